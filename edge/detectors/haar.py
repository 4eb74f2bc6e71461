"""OpenCV's Haar cascade: always available (opencv-python-headless < 5 ships the cascade files)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edgefer.edge.detectors import Detection, DetectorConfig, FaceDetector, Unavailable

CASCADE = "haarcascade_frontalface_default.xml"


class HaarConfig(DetectorConfig):
    type: Literal["haar"] = "haar"
    detect_width: int = Field(320, ge=0, le=4096,
                              description="frames wider than this are shrunk to it before detection (0: never)")
    min_size: int = Field(40, ge=8, le=1024, description="smallest face side, in pixels of the full frame")
    scale_factor: float = Field(1.1, gt=1.0, le=2.0, description="image pyramid step (larger: faster, misses more)")
    min_neighbors: int = Field(5, ge=1, le=50, description="overlapping hits a face needs (larger: fewer false faces)")


class HaarFaceDetector(FaceDetector):
    type_key = "haar"
    config_class = HaarConfig

    def __init__(self, config: HaarConfig | None = None) -> None:
        super().__init__(config or HaarConfig())
        path = Path(cv2.data.haarcascades) / CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise Unavailable(f"{path}: Haar cascade missing; install opencv-python-headless<5 (5.x ships none)")

    def detect(self, gray: np.ndarray) -> list[Detection]:
        cfg: HaarConfig = self.config  # type: ignore[assignment]
        scale = 1.0
        if cfg.detect_width and gray.shape[1] > cfg.detect_width:
            scale = gray.shape[1] / cfg.detect_width
            gray = cv2.resize(gray, (cfg.detect_width, int(round(gray.shape[0] / scale))),
                              interpolation=cv2.INTER_AREA)
        min_side = max(8, int(round(cfg.min_size / scale)))
        found = self.cascade.detectMultiScale(gray, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
                                              minSize=(min_side, min_side))
        faces = [Detection(tuple(float(v) * scale for v in b), 1.0) for b in found]
        return sorted(faces, key=lambda d: d.box[2] * d.box[3], reverse=True)
