"""A Raspberry Pi camera through picamera2 (libcamera). picamera2 comes from apt (python3-picamera2) into a
venv made with --system-site-packages; it is imported only when this source opens.

Detection and the models need grey only, so the camera delivers a low-resolution YUV420 stream and we use
its Y (luma) plane directly: no colour conversion, a fraction of the memory bandwidth.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
from pydantic import Field

from edgefer.edge.sources import Frame, Source, SourceConfig, SourceError, SourceLost, Unavailable


class PicameraConfig(SourceConfig):
    type: Literal["picamera"] = "picamera"
    camera: int = Field(0, ge=0, le=7, description="camera number (Pi 5 has two connectors)")
    width: int = Field(640, ge=64, le=2028, description="width of the YUV420 stream the monitor reads")
    height: int = Field(480, ge=64, le=1520, description="height of that stream")
    fps: float = Field(30.0, gt=0, le=120, description="frame rate asked of the sensor")


class PicameraSource(Source):
    type_key = "picamera"
    config_class = PicameraConfig
    finite = False

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise Unavailable("picamera2 is not installed: sudo apt install python3-picamera2, and make the venv "
                              "with --system-site-packages") from None
        cfg: PicameraConfig = self.config  # type: ignore[assignment]
        try:
            self.camera = Picamera2(cfg.camera)
            stream = {"size": (cfg.width, cfg.height), "format": "YUV420"}
            config = self.camera.create_video_configuration(main=stream, controls={"FrameRate": cfg.fps})
            self.camera.configure(config)
            self.camera.start()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError when no camera is attached
            raise SourceError(f"picamera {cfg.camera}: cannot start ({exc})") from None
        self.index = 0
        self._t0 = time.monotonic()

    def read(self) -> Frame | None:
        cfg: PicameraConfig = self.config  # type: ignore[assignment]
        try:
            request = self.camera.capture_request()
            try:
                yuv = request.make_array("main")
                sensor_ns = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()
        except Exception as exc:
            raise SourceLost(f"picamera {cfg.camera}: {exc}") from None
        gray = np.ascontiguousarray(yuv[:cfg.height, :cfg.width])  # the Y plane; rows may be padded to a stride
        ts = sensor_ns / 1e9 if sensor_ns else time.monotonic() - self._t0
        frame = Frame(self.index, ts, gray)
        self.index += 1
        return frame

    def close(self) -> None:
        camera = getattr(self, "camera", None)
        if camera is not None:
            try:
                camera.stop()
                camera.close()
            except Exception:  # closing a camera that vanished must not mask the original fault
                pass
            self.camera = None

    def describe(self) -> str:
        return f"picamera {self.config.camera}"  # type: ignore[attr-defined]
