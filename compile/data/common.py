"""What every reader shares: the :class:`FaceSet` they return, :class:`DataError`, CSV rows with a checked
header, image decoding, hashed group splits and atomic .npz caches."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: FER2013's label order (column ``emotion``), which the shipped expression models keep; the default of
#: :class:`FaceSet`.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm")


class DataError(ValueError):
    """A data file does not have the expected format; the message names the file and line."""


@dataclass
class FaceSet:
    """Grey face crops with integer labels into ``labels``."""

    images: np.ndarray  # uint8 [N, H, W]
    targets: np.ndarray  # int64 [N]
    labels: tuple[str, ...] = FER_LABELS
    source: str = ""
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # row index in the source
    #: Per-image strings: ``group`` = the face an image comes from (both eye patches of a face share it),
    #: ``side`` = left/right. Empty when the format has no such notion (one image per face).
    groups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    sides: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        if len(self.images) != len(self.targets):
            raise ValueError(f"{len(self.images)} images but {len(self.targets)} targets")
        if self.rows.size == 0:
            self.rows = np.arange(len(self.images), dtype=np.int64)
        for name in ("groups", "sides"):
            if 0 < len(getattr(self, name)) != len(self.images):
                raise ValueError(f"{len(self.images)} images but {len(getattr(self, name))} {name}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask: np.ndarray) -> FaceSet:
        pick = lambda a: a[mask] if len(a) else a  # noqa: E731
        return FaceSet(self.images[mask], self.targets[mask], self.labels, self.source, self.rows[mask],
                       pick(self.groups), pick(self.sides))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {name: int(c) for name, c in zip(self.labels, counts, strict=True)}


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _rows(path: Path, expected: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, row) after checking the header starts with ``expected``."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}:1: empty file, expected a header {','.join(expected)}") from None
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise DataError(f"{path}:1: not a readable CSV ({exc})") from None
        got = tuple(h.strip() for h in header[: len(expected)])
        if got != expected:
            raise DataError(f"{path}:1: header is {','.join(header)!r}, expected {','.join(expected)!r}")
        try:
            for row in reader:
                yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
            raise DataError(f"{path}:{reader.line_num}: unreadable ({exc})") from None


def _read_grey(path: Path, size: int) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (expected {', '.join(IMAGE_SUFFIXES)})")
    if image.shape != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz cache so that a reader never sees half a file and two writers never collide: each writes
    its own temporary file beside the target and renames it into place (two training runs started together
    used to share one temporary name, and the second rename failed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hashed_split(groups: np.ndarray, shares: dict[str, float], salt: str) -> np.ndarray:
    """Deterministic split name per image from a hash of its group (face), so every patch of a face (and
    every face of an identity, when the group is the identity) lands in the same split, whatever the file
    order or the number of faces."""
    names = list(shares)
    edges = np.cumsum([shares[n] for n in names])
    out = np.empty(len(groups), dtype=object)
    cache: dict[str, str] = {}
    for i, g in enumerate(groups):
        if g not in cache:
            h = int.from_bytes(hashlib.sha1(f"{salt}:{g}".encode()).digest()[:8], "big") / 2.0**64
            cache[g] = names[min(int(np.searchsorted(edges, h * edges[-1], side="right")), len(names) - 1)]
        out[i] = cache[g]
    return out
