"""cv2.VideoCapture: a USB/V4L2 camera index, a video file, or a GStreamer pipeline (a Jetson CSI camera)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edgefer.edge.sources import Frame, Source, SourceConfig, SourceError, SourceLost


class CaptureConfig(SourceConfig):
    type: Literal["capture"] = "capture"
    device: str = Field(description="a camera index ('0'), a video file path, or a GStreamer pipeline string")
    width: int | None = Field(None, ge=16, le=7680, description="requested camera width (cameras only)")
    height: int | None = Field(None, ge=16, le=4320, description="requested camera height (cameras only)")
    fps: float | None = Field(None, gt=0, le=240, description="requested camera frame rate (cameras only)")
    max_bad_reads: int = Field(5, ge=1, le=1000, description="consecutive failed reads before a camera counts as lost")


def _kind(device: str) -> str:
    if device.isdigit():
        return "camera"
    if "!" in device:
        return "gstreamer"
    return "file"


class CaptureSource(Source):
    type_key = "capture"
    config_class = CaptureConfig

    def __init__(self, config: CaptureConfig) -> None:
        super().__init__(config)
        self.kind = _kind(config.device)
        self.finite = self.kind == "file"
        self.cap: cv2.VideoCapture | None = None
        self.index = 0
        self._t0 = 0.0

    def open(self) -> None:
        cfg: CaptureConfig = self.config  # type: ignore[assignment]
        if self.kind == "file" and not Path(cfg.device).is_file():
            raise SourceError(f"{cfg.device}: video file not found")
        if self.kind == "camera":
            cap = cv2.VideoCapture(int(cfg.device))
        elif self.kind == "gstreamer":
            cap = cv2.VideoCapture(cfg.device, cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(cfg.device)
        if not cap.isOpened():
            what = {"camera": "camera", "gstreamer": "GStreamer pipeline", "file": "video file"}[self.kind]
            hint = " (is OpenCV built with GStreamer? pip's opencv-python-headless is not)" \
                if self.kind == "gstreamer" else ""
            raise SourceError(f"{cfg.device}: cannot open this {what}{hint}")
        if self.kind == "camera":
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, cfg.width), (cv2.CAP_PROP_FRAME_HEIGHT, cfg.height),
                                (cv2.CAP_PROP_FPS, cfg.fps)):
                if value:
                    cap.set(prop, value)
        self.cap = cap
        self._t0 = time.monotonic()
        self._bad = 0

    def read(self) -> Frame | None:
        if self.cap is None:
            raise SourceLost(f"{self.config.device}: not open")  # type: ignore[attr-defined]
        ok, image = self.cap.read()
        if not ok or image is None:
            if self.finite:
                return None  # end of the file
            self._bad += 1
            if self._bad >= self.config.max_bad_reads:  # type: ignore[attr-defined]
                self.close()
                raise SourceLost(f"camera {self.config.device}: {self._bad} reads failed")  # type: ignore[attr-defined]
            return Frame(self.index, time.monotonic() - self._t0, np.empty((0, 0), np.uint8))
        self._bad = 0
        ts = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self.finite else time.monotonic() - self._t0
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        frame = Frame(self.index, ts, gray, image if image.ndim == 3 else None)
        self.index += 1
        return frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def describe(self) -> str:
        return f"{self.kind} {self.config.device}"  # type: ignore[attr-defined]
