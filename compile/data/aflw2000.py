"""AFLW2000-3D head-pose data (``pose.csv`` + ``images/``) and faces found the way the runtime finds them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefer.edge.detectors import Detection, FaceDetector

#: Common practice: score only faces whose three angles are all within +-99 degrees.
MAX_ANGLE = 99.0


@dataclass(frozen=True)
class PoseSample:
    file: Path
    pose: tuple[float, float, float]  # yaw, pitch, roll in degrees (AFLW2000's convention, see edge/headpose.py)
    landmarks: np.ndarray  # [68, 2] pixels
    split: str


def read_aflw(data_dir: str | Path, split: str | None = None, max_angle: float | None = MAX_ANGLE) -> list[PoseSample]:
    """Rows of ``DATA_DIR/pose.csv`` (``split``: train, val or None for all; faces beyond ``max_angle`` left out)."""
    data_dir = Path(data_dir)
    table = data_dir / "pose.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: not found (expected AFLW2000's pose.csv with images/ beside it)")
    out = []
    with table.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"file", "yaw_deg", "pitch_deg", "roll_deg", "x0", "y67", "split"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{table}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            if split is not None and row["split"] != split:
                continue
            try:
                pose = (float(row["yaw_deg"]), float(row["pitch_deg"]), float(row["roll_deg"]))
                marks = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(68)], np.float32)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{table}:{line}: a pose or landmark is not a number ({exc})") from None
            if max_angle is not None and max(abs(a) for a in pose) > max_angle:
                continue
            out.append(PoseSample(data_dir / "images" / row["file"], pose, marks, row["split"]))
    return out


def read_gray(path: Path) -> np.ndarray:
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise FileNotFoundError(f"{path}: not a readable image")
    return gray


def labelled_face(detector: FaceDetector, gray: np.ndarray, landmarks: np.ndarray) -> Detection | None:
    """The detection whose box holds the labelled face's landmark centre (best score first); None: missed."""
    cx, cy = (float(v) for v in landmarks.mean(axis=0))
    for det in detector.detect(gray):
        x, y, w, h = det.box
        if x <= cx <= x + w and y <= cy <= y + h:
            return det
    return None
