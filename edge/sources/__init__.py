"""Frame sources (the demo, cv2.VideoCapture, picamera2, an image folder), one module each, by ``type_key``.

A source yields :class:`Frame` objects with a timestamp in seconds on the source's own clock: a video file's
position, a camera's capture time, the demo's script time. Everything downstream (smoothing, alert timers)
uses that clock, so a replay gives the same events however fast it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefer.edge.plugins import PluginConfig, Unavailable, discover

__all__ = ["Frame", "Source", "SourceConfig", "SourceError", "SourceLost", "Unavailable", "registry"]


class SourceError(RuntimeError):
    """The source cannot be opened at all (missing file, unknown camera): a clear message, no retry."""


class SourceLost(RuntimeError):
    """A camera that worked stopped delivering (a loose cable): the monitor retries with back-off."""


@dataclass
class Frame:
    index: int
    ts: float  # seconds, the source's clock
    gray: np.ndarray  # uint8 [H, W]: what detection and the models use
    bgr: np.ndarray | None = None  # uint8 [H, W, 3] when the source has colour (the overlay draws on it)
    name: str = ""  # file name for image folders


class SourceConfig(PluginConfig):
    pass


class Source:
    type_key: str = ""
    config_class: type[SourceConfig] = SourceConfig
    #: True when the source ends by itself (a file, a folder, the demo script); a camera does not.
    finite: bool = True

    def __init__(self, config: SourceConfig) -> None:
        self.config = config

    def open(self) -> None:
        """Open (or reopen after :class:`SourceLost`); raise :class:`SourceError` if it cannot be."""

    def read(self) -> Frame | None:
        """The next frame; None at the end of a finite source; raise :class:`SourceLost` if a camera fails.
        A frame may still be bad (None, empty, wrong shape): the monitor checks, skips and counts it."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.type_key


def registry() -> dict[str, type[Source]]:
    return discover(__name__, Source)
