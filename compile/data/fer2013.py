"""FER2013 (``emotion,pixels,Usage``; plain or ``.gz``) and Microsoft's FER+ vote file ``fer2013new.csv``
(row-aligned with fer2013.csv)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgefer.compile.data.common import FER_LABELS, DataError, FaceSet, _rows, save_npz_atomic

FER_SIZE = 48
FER_SPLITS = ("Training", "PublicTest", "PrivateTest")

#: FER+ vote columns, in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
#: FER+ column -> FER2013 label. Contempt has no FER2013 class; its votes are dropped with unknown/NF.
FERPLUS_TO_FER = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear",
}


def read_fer2013_csv(path: str | Path, usages: tuple[str, ...] | None = None) -> dict[str, FaceSet]:
    """Read fer2013.csv into one FaceSet per ``Usage`` value (Training, PublicTest, PrivateTest).

    ``rows`` of each set holds the 0-based data row, so FER+ votes can be matched to it.
    """
    path = Path(path)
    n_pixels = FER_SIZE * FER_SIZE
    images: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[int]] = {}
    rows: dict[str, list[int]] = {}
    row_index = -1
    for line, row in _rows(path, ("emotion", "pixels", "Usage")):
        row_index += 1
        if len(row) != 3:
            raise DataError(f"{path}:{line}: expected 3 fields emotion,pixels,Usage, got {len(row)}")
        emotion, pixels, usage = row[0].strip(), row[1], row[2].strip()
        if not emotion.isdigit() or int(emotion) >= len(FER_LABELS):
            raise DataError(f"{path}:{line}: emotion {emotion!r} is not an integer in 0..{len(FER_LABELS) - 1}")
        if usage not in FER_SPLITS:
            raise DataError(f"{path}:{line}: Usage {usage!r} is not one of {', '.join(FER_SPLITS)}")
        if usages is not None and usage not in usages:
            continue
        try:
            values = np.array(pixels.split(), dtype=np.int64)
        except ValueError:
            raise DataError(f"{path}:{line}: pixels must be space-separated integers") from None
        if values.size != n_pixels:
            raise DataError(f"{path}:{line}: {values.size} pixels, expected {n_pixels} ({FER_SIZE}x{FER_SIZE})")
        if values.min() < 0 or values.max() > 255:
            raise DataError(f"{path}:{line}: pixel values must lie in 0..255")
        images.setdefault(usage, []).append(values.astype(np.uint8).reshape(FER_SIZE, FER_SIZE))
        targets.setdefault(usage, []).append(int(emotion))
        rows.setdefault(usage, []).append(row_index)
    if row_index < 0:
        raise DataError(f"{path}: header only, no data rows")
    return {
        usage: FaceSet(
            np.stack(images[usage]), np.array(targets[usage], dtype=np.int64), FER_LABELS,
            f"{path.name}:{usage}", np.array(rows[usage], dtype=np.int64),
        )
        for usage in images
    }


def read_ferplus_votes(path: str | Path) -> np.ndarray:
    """Read fer2013new.csv: returns int votes [N, 10] in :data:`FERPLUS_COLUMNS` order, one row per fer2013 row."""
    path = Path(path)
    votes = []
    for line, row in _rows(path, ("Usage", "Image name") + FERPLUS_COLUMNS):
        if len(row) != 2 + len(FERPLUS_COLUMNS):
            raise DataError(f"{path}:{line}: expected {2 + len(FERPLUS_COLUMNS)} fields, got {len(row)}")
        try:
            counts = [int(v) for v in row[2:]]
        except ValueError:
            raise DataError(f"{path}:{line}: vote counts must be integers") from None
        if min(counts) < 0:
            raise DataError(f"{path}:{line}: vote counts must not be negative")
        votes.append(counts)
    if not votes:
        raise DataError(f"{path}: header only, no data rows")
    return np.array(votes, dtype=np.int64)


def ferplus_soft_labels(votes: np.ndarray, labels: tuple[str, ...] = FER_LABELS) -> tuple[np.ndarray, np.ndarray]:
    """Turn FER+ votes into probabilities over ``labels``.

    Returns (probs [N, len(labels)], valid [N]); a row is invalid when none of its votes fall on a FER2013
    class (only contempt / unknown / not-a-face votes).
    """
    probs = np.zeros((len(votes), len(labels)), dtype=np.float32)
    for col, name in enumerate(FERPLUS_COLUMNS):
        target = FERPLUS_TO_FER.get(name)
        if target in labels:
            probs[:, labels.index(target)] += votes[:, col]
    total = probs.sum(axis=1)
    valid = total > 0
    probs[valid] /= total[valid, None]
    return probs, valid


def ferplus_majority(votes: np.ndarray, labels: tuple[str, ...] = FER_LABELS) -> tuple[np.ndarray, np.ndarray]:
    """FER+ relabelling as hard labels: the class most of the 10 annotators chose (FER+ paper's majority scheme).

    Returns (targets [N] in ``labels`` order, valid [N]); a row is invalid when its top vote is tied or falls on
    a class outside ``labels`` (contempt, unknown, not a face)."""
    votes = np.asarray(votes)
    top = votes.argmax(axis=1)
    unique = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) == 1
    mapping = np.array([labels.index(FERPLUS_TO_FER[c]) if FERPLUS_TO_FER.get(c) in labels else -1
                        for c in FERPLUS_COLUMNS])
    targets = mapping[top]
    valid = unique & (targets >= 0) & (votes.sum(axis=1) > 0)
    return np.where(valid, targets, 0).astype(np.int64), valid


def load_fer2013_cached(path: str | Path, cache_dir: str | Path | None = None) -> dict[str, FaceSet]:
    """read_fer2013_csv with an .npz cache keyed by the file's size and mtime (parsing takes ~15 s)."""
    path = Path(path)
    cache_root = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "edgefer"
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = cache_root / f"fer2013-{key}.npz"
    if cache.is_file():
        blob = np.load(cache)
        return {
            usage: FaceSet(blob[f"{usage}_x"], blob[f"{usage}_y"], FER_LABELS, f"{path.name}:{usage}",
                           blob[f"{usage}_rows"])
            for usage in FER_SPLITS if f"{usage}_x" in blob
        }
    sets = read_fer2013_csv(path)
    cache_root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for usage, fs in sets.items():
        arrays.update({f"{usage}_x": fs.images, f"{usage}_y": fs.targets, f"{usage}_rows": fs.rows})
    save_npz_atomic(cache, **arrays)
    return sets
