"""Face detectors, one module each, found by ``type_key`` (see :mod:`edgefer.edge.plugins`).

A detector takes a grey frame (uint8, H x W: the picamera2 Y plane, an IR camera, or a converted colour frame)
and returns faces with a score and, when the detector has them, keypoints (BlazeFace: eyes, nose, mouth, ears).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefer.edge.plugins import PluginConfig, Unavailable, discover

__all__ = ["Detection", "DetectorConfig", "FaceDetector", "Unavailable", "create", "registry"]

#: Keypoint names, from the subject's point of view (BlazeFace's order).
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in frame pixels
    score: float
    keypoints: dict[str, tuple[float, float]] | None = None  # name -> (x, y) in frame pixels

    @property
    def int_box(self) -> tuple[int, int, int, int]:
        return tuple(int(round(v)) for v in self.box)  # type: ignore[return-value]


class DetectorConfig(PluginConfig):
    pass


class FaceDetector:
    type_key: str = ""
    config_class: type[DetectorConfig] = DetectorConfig

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config

    def detect(self, gray: np.ndarray) -> list[Detection]:
        """Faces in a grey uint8 frame [H, W], best first."""
        raise NotImplementedError


def registry() -> dict[str, type[FaceDetector]]:
    return discover(__name__, FaceDetector)


def create(config: DetectorConfig | dict) -> FaceDetector:
    if isinstance(config, dict):
        config = dict(config)
        kind = config.get("type", "haar")
        if kind not in registry():
            raise ValueError(f"unknown face detector {kind!r}; available: {', '.join(sorted(registry()))}")
        config = registry()[kind].config_class(**config)
    return registry()[config.type](config)
