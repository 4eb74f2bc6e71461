"""The library front door: ``edgefer.analyze(image)`` -> the faces in it, the driver first, each with its box,
expression, eye state, yawn, head pose and attention zone (each None where the config has no such model).

It runs exactly what ``edgefer analyze`` and the monitor run per face (the same detector, crops and models, per the
config), so a figure measured through the API is the monitor's figure. An :class:`Analyzer` loads the models once;
``analyze()`` keeps one default analyzer per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.edge.config import MonitorConfig


@dataclass(frozen=True)
class Face:
    """One face: ``box`` is (x, y, w, h) in pixels of the image given; probabilities are 0..1, None where the
    model is not configured or the face is too small for eye and mouth crops."""

    box: tuple[float, float, float, float]
    score: float
    expression: dict[str, float] = field(default_factory=dict)
    eyes_open: float | None = None
    yawn: float | None = None
    head_pose: dict[str, float] | None = None  # {"yaw", "pitch", "roll"} in degrees
    zone: str | None = None  # attention zone of the head pose (road_ahead, left_mirror, ..., away)

    @property
    def top_expression(self) -> str | None:
        """The most probable expression label (None without an expression model)."""
        return max(self.expression, key=self.expression.__getitem__) if self.expression else None

    def to_json(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": self.score, "expression": self.expression or None,
                "eyes_open": self.eyes_open, "yawn": self.yawn, "head_pose": self.head_pose, "zone": self.zone}


def to_grey(image: np.ndarray | str | Path) -> np.ndarray:
    """A path (any format OpenCV reads) or an array (grey HxW, BGR HxWx3 or BGRA HxWx4, uint8) -> grey uint8.

    Anything else is a ValueError that says what was given and what is expected."""
    import cv2

    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        from edgefer.edge.sources.folder import read_image

        decoded = read_image(path, grey_only=True)  # any depth (16-bit, float), as edgefer analyze reads it
        if decoded is None:
            raise ValueError(f"{path}: not a readable image")
        return decoded[0]
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected an image path or a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0..255), got {image.dtype}: convert first, e.g. "
                         "(img * 255).clip(0, 255).astype(np.uint8)")
    if image.ndim == 2 and min(image.shape) > 0:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) > 0:
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(np.ascontiguousarray(image), code)
    raise ValueError(f"expected a grey HxW or BGR HxWx3 / BGRA HxWx4 image, got shape {image.shape}")


class Analyzer:
    """Holds the detector and models of one config; call it on as many images as you like."""

    def __init__(self, config: MonitorConfig | str | Path | None = None) -> None:
        from edgefer.edge import config as config_module
        from edgefer.edge.monitor import Monitor

        cfg = config if isinstance(config, MonitorConfig) else config_module.load(config)
        self._monitor = Monitor(cfg)

    def analyze(self, image: np.ndarray | str | Path) -> list[Face]:
        """Every face in ``image``, the likely driver first (large and central)."""
        faces = []
        for result in self._monitor.faces(to_grey(image)):
            data = result.to_json()
            faces.append(Face(box=tuple(data["box"]), score=data["score"], expression=data["expression"] or {},
                              eyes_open=data["eyes_open"], yawn=data["yawn"], head_pose=data["head_pose"],
                              zone=data["zone"]))
        return faces


_DEFAULT: Analyzer | None = None


def analyze(image: np.ndarray | str | Path, config: MonitorConfig | str | Path | None = None) -> list[Face]:
    """The faces in one image (a path or an array), the driver first. With no ``config`` the default models
    are loaded once and reused by later calls."""
    global _DEFAULT
    if config is not None:
        return Analyzer(config).analyze(image)
    if _DEFAULT is None:
        _DEFAULT = Analyzer()
    return _DEFAULT.analyze(image)
