"""A folder of images (recursively, sorted), one frame each: for replays and for `edgefer analyze`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edgefer.edge.sources import Frame, Source, SourceConfig, SourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def read_image(path: str | Path, grey_only: bool = False) -> tuple[np.ndarray, np.ndarray | None] | None:
    """An image file as (8-bit grey, 8-bit BGR or None), or None when OpenCV cannot decode it (truncated, not an
    image, whatever its name says). Any depth (16-bit, 32-bit, float with NaN or inf) is scaled to 8 bits by
    its brightest pixel; grey+alpha, BGRA and CMYK become grey and BGR. ``grey_only`` decodes straight to grey
    (``analyze``: JPEG's own luma, no colour buffer)."""
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH if grey_only else cv2.IMREAD_UNCHANGED
    image = cv2.imread(str(path), flags)
    if grey_only and (image is None or image.size == 0):  # OpenCV cannot decode some float colour TIFFs to grey
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        image = cv2.convertScaleAbs(values, alpha=255.0 / max(float(values.max()), 1.0))
    if image.ndim == 3 and image.shape[2] in (1, 2):  # grey, grey + alpha
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2:
        return image, None
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), image
    return None


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
        image = read_image(path)
        ts = self.index / self.config.fps  # type: ignore[attr-defined]
        frame_index, self.index = self.index, self.index + 1
        if image is None:  # unreadable: the monitor counts it as a bad frame
            return Frame(frame_index, ts, np.empty((0, 0), np.uint8), name=str(path))
        return Frame(frame_index, ts, *image, name=str(path))

    def describe(self) -> str:
        return f"folder {self.config.path}"  # type: ignore[attr-defined]
