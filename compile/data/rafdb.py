"""RAF-DB basic emotions (``ROOT/labels.csv`` = ``image,label_id,label`` and ``ROOT/train/*_aligned.jpg``, RAF-DB's
own aligned 100x100 colour faces).

Only RAF-DB's official *training* split is read: its test split is a held-out set that scores the models, so it
is never looked for here. The validation slice is carved out of the training split by a hash of each image's
name, per class (stratified), so it is the same whatever the file order, the machine or the number of images
read, and it never moves when images are added. RAF-DB has no subject ids: near-duplicate photos of one person
can fall on both sides, so the slice flatters a little (said wherever its figures are written).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgefer.compile.data.common import FER_LABELS, DataError, FaceSet, _read_grey, _rows, save_npz_atomic

RAFDB_CSV = "labels.csv"
RAFDB_COLUMNS = ("image", "label_id", "label")
RAFDB_IMAGES = "train"
#: RAF-DB's label ids (1 surprise, 2 fear, 3 disgust, 4 happy, 5 sad, 6 angry, 7 neutral) -> FER2013's names.
RAFDB_IDS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
#: Share of each class held out for choosing (validation); the rest is trained on.
RAFDB_VAL_SHARE = 0.1
RAFDB_SPLIT_SALT = "edgefer-rafdb-v1"
#: Bump when the reading or resizing changes, so cached arrays are recomputed.
RAFDB_CACHE_VERSION = "1"


def rafdb_csv_path(path: str | Path) -> Path | None:
    """The labels.csv when ``path`` is a RAF-DB folder (the file itself or its folder), else None."""
    path = Path(path)
    csv_path = path / RAFDB_CSV if path.is_dir() else path
    if csv_path.name != RAFDB_CSV or not csv_path.is_file():
        return None
    with open(csv_path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().strip()
    return csv_path if header.startswith(",".join(RAFDB_COLUMNS)) else None


def read_rafdb(csv_path: str | Path, size: int = 48) -> FaceSet:
    """Every image named by labels.csv, grey, resized to ``size`` (area interpolation), labels in FER2013 order.

    ``groups`` holds the image names (the split key), ``rows`` the 0-based data row. A bad row or image raises
    DataError naming the file and line."""
    csv_path = Path(csv_path)
    root = csv_path.parent / RAFDB_IMAGES
    images, targets, names = [], [], []
    seen: dict[str, int] = {}
    for line, row in _rows(csv_path, RAFDB_COLUMNS):
        if len(row) < len(RAFDB_COLUMNS):
            raise DataError(f"{csv_path}:{line}: expected {len(RAFDB_COLUMNS)} fields {','.join(RAFDB_COLUMNS)}, "
                            f"got {len(row)}")
        image, label_id, label = (v.strip() for v in row[:3])
        if not label_id.isdigit() or int(label_id) not in RAFDB_IDS:
            raise DataError(f"{csv_path}:{line}: label_id {label_id!r} is not one of 1..7")
        name = RAFDB_IDS[int(label_id)]
        if label and label.lower() != name:
            raise DataError(f"{csv_path}:{line}: label {label!r} does not match label_id {label_id} ({name})")
        if image in seen:
            raise DataError(f"{csv_path}:{line}: {image} is listed twice (first on line {seen[image]})")
        seen[image] = line
        if not (root / image).is_file():
            raise DataError(f"{csv_path}:{line}: {root / image}: no such file")
        try:
            images.append(_read_grey(root / image, size))
        except DataError as exc:
            raise DataError(f"{csv_path}:{line}: {exc}") from None
        targets.append(FER_LABELS.index(name))
        names.append(image)
    if not images:
        raise DataError(f"{csv_path}: header only, no data rows")
    return FaceSet(np.stack(images), np.array(targets, dtype=np.int64), FER_LABELS, csv_path.parent.name,
                   groups=np.array(names, dtype=object))


def read_rafdb_cached(csv_path: str | Path, size: int = 48, cache_dir: str | Path | None = None) -> FaceSet:
    """read_rafdb with an .npz cache keyed by the csv's path, size and mtime (decoding 12,271 JPEGs takes a while)."""
    csv_path = Path(csv_path)
    stat = csv_path.stat()
    text = f"{csv_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{size}:{RAFDB_CACHE_VERSION}"
    cache = (Path(cache_dir) if cache_dir else Path.home() / ".cache" / "edgefer") / \
        f"rafdb-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npz"
    if cache.is_file():
        blob = np.load(cache, allow_pickle=False)
        return FaceSet(blob["images"], blob["targets"], FER_LABELS, csv_path.parent.name,
                       groups=blob["names"].astype(object))
    faces = read_rafdb(csv_path, size)
    save_npz_atomic(cache, images=faces.images, targets=faces.targets, names=faces.groups.astype(str))
    return faces


def rafdb_val_mask(names: np.ndarray, targets: np.ndarray, share: float = RAFDB_VAL_SHARE,
                   salt: str = RAFDB_SPLIT_SALT) -> np.ndarray:
    """The validation slice: in each class, the ``share`` of images whose salted name hash is smallest (at least
    one per class). Stratified, and fixed by the names alone."""
    keys = np.array([int.from_bytes(hashlib.sha1(f"{salt}:{n}".encode()).digest()[:8], "big") for n in names],
                    dtype=np.uint64)
    mask = np.zeros(len(names), dtype=bool)
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        take = max(1, int(round(share * idx.size)))
        mask[idx[np.argsort(keys[idx], kind="stable")[:take]]] = True
    return mask


def rafdb_split(faces: FaceSet, split: str, source: str = "") -> FaceSet:
    """``train`` (everything but the validation slice) or ``val``; RAF-DB's own test split is held out."""
    if split == "test":
        raise DataError(f"{source or faces.source}: RAF-DB's test split is a held-out set and is not read here; "
                        "choose on the val slice (or on FER2013's PublicTest)")
    if split not in ("train", "val"):
        raise DataError(f"{source or faces.source}: unknown split {split!r}; one of train, val")
    val = rafdb_val_mask(faces.groups, faces.targets)
    out = faces.subset(val if split == "val" else ~val)
    out.source = f"{faces.source}:{split}"
    return out
