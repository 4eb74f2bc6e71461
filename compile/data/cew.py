"""An eye-patch manifest ``ROOT/manifest.csv`` (``file,label,eye,source_face[,identity_if_known]``, the CEW
layout): split into train/val/test by a hash of the face, never by patch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.compile.data.common import DataError, FaceSet, _read_grey, _rows, hashed_split

#: Eye-state labels in output order (alphabetical, as the CEW folders name them).
EYE_LABELS: tuple[str, ...] = ("closed", "open")
EYE_SIZE = 24
EYE_MANIFEST = "manifest.csv"
EYE_COLUMNS = ("file", "label", "eye", "source_face")
#: Share of faces per split; test is never used for choosing anything.
EYE_SPLIT_SHARES = {"train": 0.7, "val": 0.1, "test": 0.2}
#: Salt of the face hash: changing it draws another split (record it with the model).
EYE_SPLIT_SALT = "edgefer-eyes-v1"


def eye_manifest_path(path: str | Path) -> Path | None:
    """The manifest when ``path`` is an eye-patch data set (the manifest itself or its folder), else None."""
    path = Path(path)
    if path.is_dir() and (path / EYE_MANIFEST).is_file():
        return path / EYE_MANIFEST
    if path.name == EYE_MANIFEST:
        return path
    return None


def face_split(groups: np.ndarray, shares: dict[str, float] = EYE_SPLIT_SHARES,
               salt: str = EYE_SPLIT_SALT) -> np.ndarray:
    """:func:`~edgefer.compile.data.common.hashed_split` with the eye sets' shares and salt: every patch of a face (and
    every face of an identity, when the group is the identity) lands in the same split."""
    return hashed_split(groups, shares, salt)


def read_eye_manifest(manifest: str | Path, size: int = EYE_SIZE,
                      labels: tuple[str, ...] = EYE_LABELS) -> FaceSet:
    """Read every patch named by ``manifest.csv`` (paths relative to its folder), grey, resized to ``size``.

    ``groups`` holds the split key: the identity where the manifest knows it (``identity_if_known``), else
    ``source_face``. ``rows`` holds the 0-based data row. Raises DataError naming the file and line.
    """
    manifest = Path(manifest)
    root = manifest.parent
    images, targets, groups, sides, rows = [], [], [], [], []
    face_label: dict[str, tuple[str, int]] = {}
    seen: dict[str, int] = {}
    row_index = -1
    for line, row in _rows(manifest, EYE_COLUMNS):
        row_index += 1
        if len(row) < len(EYE_COLUMNS):
            raise DataError(f"{manifest}:{line}: expected at least {len(EYE_COLUMNS)} fields "
                            f"{','.join(EYE_COLUMNS)}[,identity_if_known], got {len(row)}")
        file, label, eye, face = (v.strip() for v in row[:4])
        identity = row[4].strip() if len(row) > 4 else ""
        if label not in labels:
            raise DataError(f"{manifest}:{line}: label {label!r} is not one of {', '.join(labels)}")
        if eye not in ("left", "right"):
            raise DataError(f"{manifest}:{line}: eye {eye!r} is not left or right")
        if not file or not face:
            raise DataError(f"{manifest}:{line}: empty file or source_face")
        if file in seen:
            raise DataError(f"{manifest}:{line}: {file} is listed twice (first on line {seen[file]})")
        seen[file] = line
        if face_label.setdefault(face, (label, line))[0] != label:
            raise DataError(f"{manifest}:{line}: face {face} is {label} here but "
                            f"{face_label[face][0]} on line {face_label[face][1]}")
        if not (root / file).is_file():
            raise DataError(f"{manifest}:{line}: {root / file}: no such file")
        try:
            images.append(_read_grey(root / file, size))
        except DataError as exc:
            raise DataError(f"{manifest}:{line}: {exc}") from None
        targets.append(labels.index(label))
        groups.append(f"id:{identity}" if identity else f"face:{face}")
        sides.append(eye)
        rows.append(row_index)
    if not images:
        raise DataError(f"{manifest}: header only, no data rows")
    return FaceSet(np.stack(images), np.array(targets, dtype=np.int64), labels, manifest.parent.name,
                   np.array(rows, dtype=np.int64), np.array(groups, dtype=object), np.array(sides, dtype=object))


_EYE_CACHE: dict[tuple, FaceSet] = {}


def read_eye_manifest_cached(manifest: str | Path, size: int = EYE_SIZE) -> FaceSet:
    """read_eye_manifest, kept in memory per (manifest, size, mtime): each toolchain step reads it twice."""
    manifest = Path(manifest)
    stat = manifest.stat()
    key = (str(manifest.resolve()), size, stat.st_size, stat.st_mtime_ns)
    if key not in _EYE_CACHE:
        _EYE_CACHE.clear()
        _EYE_CACHE[key] = read_eye_manifest(manifest, size)
    return _EYE_CACHE[key]
