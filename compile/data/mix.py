"""Several data sets trained as one (FER2013 + RAF-DB): same labels, one image size, rows that stay unique.

A mix is a list of data paths, each in a format :func:`~edgefer.compile.data.load_dataset` reads. Its splits are
the union of each source's own: ``train`` = FER2013 Training + RAF-DB's train slice, ``val`` = PublicTest + the
RAF-DB validation slice, ``test`` = the sources that have a test split here (RAF-DB's is held out, so PrivateTest
alone). Row keys are ``source index * MIX_ROW_STRIDE + the source's own row``, so a soft-label file made for the
mix at one image size fits the same mix at any other size (a 96-px teacher labels a 48-px student's rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgefer.compile.data.common import DataError, FaceSet

#: Row-key spacing between the sources of a mix (FER2013 has 35,887 rows; no source comes near this).
MIX_ROW_STRIDE = 10_000_000


def resize_faces(faces: FaceSet, size: int) -> FaceSet:
    """``faces`` at ``size`` x ``size``: area interpolation down, bilinear up (FER2013's 48 px to a teacher's 96)."""
    import cv2

    if faces.images.shape[1:] == (size, size):
        return faces
    method = cv2.INTER_AREA if faces.images.shape[1] > size else cv2.INTER_LINEAR
    images = np.stack([cv2.resize(im, (size, size), interpolation=method) for im in faces.images]) \
        if len(faces) else np.zeros((0, size, size), dtype=np.uint8)
    return FaceSet(images, faces.targets, faces.labels, faces.source, faces.rows, faces.groups, faces.sides)


def source_of_rows(rows: np.ndarray) -> np.ndarray:
    """Which source of a mix each row key comes from (0 = the first path)."""
    return np.asarray(rows) // MIX_ROW_STRIDE


def load_mix(paths: Sequence[str | Path], split: str, size: int | None,
             load_one: Callable[[str | Path, str, int | None], FaceSet],
             info_of: Callable[[str | Path], dict]) -> FaceSet:
    """The mix's ``split`` (train/val/test or a FER2013 name) at ``size`` (default: the first source's)."""
    canonical = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}.get(split, split)
    if canonical not in ("train", "val", "test"):
        raise DataError(f"a mix of {len(paths)} data sets has splits train, val and test, not {split!r}")
    parts: list[FaceSet] = []
    tasks = {str(p): info_of(p)["task"] for p in paths}
    if len(set(tasks.values())) > 1:
        raise DataError(f"a mix must hold one task; got {tasks}")
    for index, path in enumerate(paths):
        info = info_of(path)
        name = {"train": info["train"], "val": info["validation"], "test": info["test"]}[canonical]
        if name is None:
            continue  # this source has no split for it here (RAF-DB's test split is held out)
        part = load_one(path, name, size)
        if size is None and parts:
            part = resize_faces(part, parts[0].images.shape[1])
        if parts and part.labels != parts[0].labels:
            raise DataError(f"{path}: labels {list(part.labels)} differ from {paths[0]}'s {list(parts[0].labels)}")
        parts.append(FaceSet(part.images, part.targets, part.labels, part.source,
                             part.rows + index * MIX_ROW_STRIDE))
    if not parts:
        raise DataError(f"no source of the mix has a {canonical} split")
    return FaceSet(np.concatenate([p.images for p in parts]), np.concatenate([p.targets for p in parts]),
                   parts[0].labels, "+".join(p.source for p in parts), np.concatenate([p.rows for p in parts]))
