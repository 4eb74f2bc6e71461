"""``type: overlay``: the latest frame in a window, with face boxes, labels and the active alerts.

Why optional: a car usually has no screen for this, and the device wheel is opencv-python-headless, which has
no GUI. Creating the output checks for a display (``DISPLAY``/``WAYLAND_DISPLAY`` on Linux) and for OpenCV's
HighGUI, and says what is missing instead of failing on the first frame.

The drawing is the pure function :func:`draw`, which the monitor also uses to write an annotated video when the
user asks for one. The overlay needs frames, so besides ``emit`` (which only tracks the active alerts and
faults) it has ``show(frame, faces, alerts)``, which the monitor calls each frame; ``show`` never raises: if
the window fails it logs once and stops showing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from edgefer.edge.events import Event
from edgefer.edge.outputs import Output, OutputConfig, fault_subject
from edgefer.edge.plugins import Unavailable

log = logging.getLogger("edgefer.outputs")

_LEVEL_COLOURS = {0: (80, 200, 80), 1: (0, 190, 255), 2: (0, 0, 255)}  # BGR: green, amber, red


def _face_box_and_label(face: Any) -> tuple[tuple[int, int, int, int], str]:
    """A face is a :class:`edgefer.edge.detectors.Detection` (or anything with ``box`` and optionally ``label`` or
    ``score``), or a ``(box, label)`` pair; ``box`` is x, y, w, h in frame pixels."""
    if isinstance(face, tuple) and len(face) == 2 and not isinstance(face[0], (int, float)):
        box, label = face
    else:
        box = face.box
        label = getattr(face, "label", None)
        if label is None and getattr(face, "score", None) is not None:
            label = f"face {face.score:.2f}"
    x, y, w, h = (int(round(float(v))) for v in box)
    return (x, y, w, h), str(label or "")


def draw(frame_bgr: np.ndarray, faces: Iterable[Any] = (), alerts: Mapping[str, int] | None = None,
         faults: Iterable[str] = ()) -> np.ndarray:
    """A copy of ``frame_bgr`` (uint8 [H, W, 3]; a grey [H, W] frame is converted) with each face's box and
    label, and one line per active alert (rule -> level, amber at 1, red from 2) and fault at the top left."""
    image = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR) if frame_bgr.ndim == 2 else frame_bgr.copy()
    alerts = dict(alerts or {})
    top = max(alerts.values(), default=0)
    scale = max(0.4, image.shape[0] / 720)
    thick = max(1, int(round(scale * 2)))
    for face in faces:
        (x, y, w, h), label = _face_box_and_label(face)
        colour = _LEVEL_COLOURS[min(top, 2)]
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, thick)
        if label:
            cv2.putText(image, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, colour, thick)
    lines = [(f"{rule} L{level}", _LEVEL_COLOURS[min(level, 2)]) for rule, level in sorted(alerts.items())]
    lines += [(f"fault: {name}", (255, 255, 255)) for name in sorted(faults)]
    for i, (text, colour) in enumerate(lines):
        org = (8, int((i + 1) * 24 * scale))
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), thick + 2)
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour, thick)
    return image


class OverlayConfig(OutputConfig):
    type: Literal["overlay"] = "overlay"
    window: str = Field("edgefer", min_length=1, max_length=80, description="the window's title")
    scale: float = Field(1.0, ge=0.25, le=4.0, description="display size relative to the frame")
    fullscreen: bool = Field(False, description="fill the screen (a dashboard display)")


class OverlayOutput(Output):
    type_key = "overlay"
    config_class = OverlayConfig
    config: OverlayConfig

    def __init__(self, config: OverlayConfig) -> None:
        super().__init__(config)
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise Unavailable("overlay output: no display (DISPLAY and WAYLAND_DISPLAY are unset)")
        try:
            cv2.namedWindow(config.window, cv2.WINDOW_NORMAL)
            if config.fullscreen:
                cv2.setWindowProperty(config.window, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        except cv2.error as exc:
            raise Unavailable("overlay output: this OpenCV has no GUI (opencv-python-headless, the device "
                              "default); for a window install opencv-python instead of opencv-python-headless "
                              f"({str(exc).strip().splitlines()[-1]})") from None
        self.alerts: dict[str, int] = {}
        self.faults: set[str] = set()
        self._broken = False

    def emit(self, event: Event) -> None:
        if event.kind == "alert":
            if event.level > 0 and event.action != "clear":
                self.alerts[event.name] = event.level
            else:
                self.alerts.pop(event.name, None)
        elif event.kind == "fault":
            (self.faults.add if event.level > 0 else self.faults.discard)(fault_subject(event))

    def show(self, frame: np.ndarray, faces: Iterable[Any] = (), alerts: Mapping[str, int] | None = None) -> None:
        """Draw and display one frame (``alerts`` None: the ones this output tracked from events)."""
        if self._broken or frame is None:
            return
        try:
            image = draw(frame, faces, self.alerts if alerts is None else alerts, self.faults)
            if self.config.scale != 1.0:
                image = cv2.resize(image, None, fx=self.config.scale, fy=self.config.scale)
            cv2.imshow(self.config.window, image)
            cv2.waitKey(1)
        except cv2.error as exc:
            self._broken = True
            log.warning("overlay output: cannot show frames any more (%s)", str(exc).strip().splitlines()[-1])

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.config.window)
