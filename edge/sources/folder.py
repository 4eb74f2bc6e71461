"""A folder of images (recursively, sorted), one frame each: for replays and for `edgefer analyze`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edge.sources import Frame, Source, SourceConfig, SourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def list_images(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class FolderConfig(SourceConfig):
    type: Literal["folder"] = "folder"
    path: str = Field(description="a folder of images, searched recursively, read in name order")
    fps: float = Field(10.0, gt=0, le=1000, description="the clock the frames are given: frame k is at k / fps s")


class FolderSource(Source):
    type_key = "folder"
    config_class = FolderConfig

    def open(self) -> None:
        root = Path(self.config.path)  # type: ignore[attr-defined]
        if not root.exists():
            raise SourceError(f"{root}: no such folder")
        self.files = list_images(root)
        if not self.files:
            raise SourceError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
        self.index = 0

    def read(self) -> Frame | None:
        if self.index >= len(self.files):
            return None
        path = self.files[self.index]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        ts = self.index / self.config.fps  # type: ignore[attr-defined]
        frame_index, self.index = self.index, self.index + 1
        if image is None:  # unreadable: the monitor counts it as a bad frame
            return Frame(frame_index, ts, np.empty((0, 0), np.uint8), name=str(path))
        if image.dtype != np.uint8:
            image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return Frame(frame_index, ts, gray, image if image.ndim == 3 else None, name=str(path))

    def describe(self) -> str:
        return f"folder {self.config.path}"  # type: ignore[attr-defined]
