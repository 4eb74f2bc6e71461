"""Which face is the driver, and where it is between detections.

Detection runs every N frames (it is the costly stage); in between, the driver's last box is held. The driver
is the face that is large and central, and a face that already is the driver keeps the role unless another is
clearly better, so a passenger leaning in does not steal it for a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from edgefer.edge.detectors import Detection


class TrackingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detect_every: int = Field(3, ge=1, le=100, description="while a driver is tracked, re-detect around the "
                                                           "driver's box every N frames; hold the box in between")
    search_every: int = Field(2, ge=1, le=100, description="while no driver is tracked, search the whole frame "
                                                           "every N frames")
    full_every: int = Field(30, ge=1, le=10000, description="while tracking, also search the whole frame every N "
                                                            "frames (a face that moved fast, a new driver)")
    roi_margin: float = Field(0.6, ge=0.1, le=3.0, description="the re-detection window adds this share of the "
                                                               "box side on each side")
    roi_face_px: int = Field(72, ge=24, le=512, description="the window is scaled so the tracked face is about "
                                                            "this many pixels wide (detection cost follows it)")
    centre_weight: float = Field(0.5, ge=0, le=1, description="how much distance from the frame centre costs")
    keep_iou: float = Field(0.3, ge=0, le=1, description="a detection overlapping the driver this much is the driver")
    switch_ratio: float = Field(1.5, ge=1, le=10, description="another face must score this much more to take over")


@dataclass(frozen=True)
class DriverTrack:
    detection: Detection
    since: float  # timestamp the track began
    detected_at: int  # frame index of the detection the box comes from


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def driver_score(det: Detection, frame_shape: tuple[int, int], cfg: TrackingConfig) -> float:
    """Larger and more central is more likely the driver (the camera is aimed at the driver's seat)."""
    h, w = frame_shape
    x, y, bw, bh = det.box
    area = bw * bh / float(w * h)
    dx = (x + bw / 2) / w - 0.5
    dy = (y + bh / 2) / h - 0.5
    off_centre = min(1.0, (dx * dx + dy * dy) ** 0.5 / 0.5 ** 0.5)  # 0 at the centre, 1 in a corner
    return area * (1.0 - cfg.centre_weight * off_centre)


def rank_faces(detections: list[Detection], frame_shape: tuple[int, int], cfg: TrackingConfig) -> list[Detection]:
    """All faces, the most likely driver first."""
    return sorted(detections, key=lambda d: driver_score(d, frame_shape, cfg), reverse=True)


def update(track: DriverTrack | None, detections: list[Detection], frame_shape: tuple[int, int], ts: float,
           frame_index: int, cfg: TrackingConfig) -> DriverTrack | None:
    """The driver after a detection pass: None when no face was found."""
    if not detections:
        return None
    ranked = rank_faces(detections, frame_shape, cfg)
    best = ranked[0]
    if track is not None:
        same = max(detections, key=lambda d: iou(d.box, track.detection.box))
        if iou(same.box, track.detection.box) >= cfg.keep_iou:
            challenger = driver_score(best, frame_shape, cfg)
            if best is same or challenger < cfg.switch_ratio * driver_score(same, frame_shape, cfg):
                return DriverTrack(same, track.since, frame_index)
    return DriverTrack(best, ts, frame_index)


def roi_for(box: tuple[float, float, float, float], frame_shape: tuple[int, int],
            cfg: TrackingConfig) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1), clipped to the frame, in which the tracked face is looked for again."""
    h, w = frame_shape
    x, y, bw, bh = box
    side = max(bw, bh)
    pad = side * cfg.roi_margin
    x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
    x1, y1 = min(w, int(x + bw + pad)), min(h, int(y + bh + pad))
    return x0, y0, x1, y1
