"""Cutting a model's input out of a frame with the geometry written in its sidecar."""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.edge.contract import CropSpec

_INTERPOLATION = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def expand_box(box: tuple[int, int, int, int], spec: CropSpec) -> tuple[float, float, float, float]:
    """(x, y, w, h) -> the crop square (or rectangle) with ``spec.margin`` added on every side."""
    x, y, w, h = box
    if spec.square:
        side = max(w, h)
        x, y, w, h = x + (w - side) / 2, y + (h - side) / 2, side, side
    return x - w * spec.margin, y - h * spec.margin, w * (1 + 2 * spec.margin), h * (1 + 2 * spec.margin)


def crop(gray: np.ndarray, box: tuple[int, int, int, int], spec: CropSpec, size: tuple[int, int]) -> np.ndarray:
    """Cut the expanded box out of a grey frame and resize to ``size`` (w, h); parts outside the frame are
    filled by replicating the border, as a face at the frame's edge is still a face."""
    if gray.ndim != 2:
        raise ValueError(f"expected a grey frame (H, W), got shape {gray.shape}")
    x, y, w, h = expand_box(box, spec)
    x0, y0 = int(round(x)), int(round(y))
    x1, y1 = int(round(x + w)), int(round(y + h))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty crop box {box}")
    fh, fw = gray.shape
    pad = max(0, -x0, -y0, x1 - fw, y1 - fh)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    patch = gray[y0:y1, x0:x1]
    return cv2.resize(patch, size, interpolation=_INTERPOLATION[spec.interpolation])


def crop_rotated(gray: np.ndarray, centre: tuple[float, float], side: float, angle_deg: float,
                 size: tuple[int, int]) -> np.ndarray:
    """A square of ``side`` pixels centred on ``centre``, rotated by ``angle_deg`` (so a tilted eye line comes out
    level), resized to ``size`` (w, h) in one warp; outside the frame the border is replicated."""
    w, h = size
    scale = w / side
    m = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    m[0, 2] += w / 2 - centre[0]
    m[1, 2] += h / 2 - centre[1]
    return cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_line(keypoints: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """(inter-ocular distance in pixels, roll angle in degrees) from the two eye keypoints."""
    (rx, ry), (lx, ly) = keypoints["right_eye"], keypoints["left_eye"]
    return float(np.hypot(lx - rx, ly - ry)), float(np.degrees(np.arctan2(ly - ry, lx - rx)))


#: Where the eyes and mouth sit in a frontal face box when the detector gives no keypoints (Haar): fractions of
#: the box, measured as the median BlazeFace keypoints inside Haar boxes (tools/measure_eye_crop.py).
BOX_KEYPOINTS = {"right_eye": (0.313, 0.411), "left_eye": (0.668, 0.399), "nose": (0.571, 0.625),
                 "mouth": (0.537, 0.802)}


def keypoints_from_box(box: tuple[float, float, float, float]) -> dict[str, tuple[float, float]]:
    x, y, w, h = box
    return {k: (x + fx * w, y + fy * h) for k, (fx, fy) in BOX_KEYPOINTS.items()}
