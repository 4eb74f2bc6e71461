"""Readers for the data formats users actually have, one module per format:

- :mod:`~edgefer.compile.data.fer2013`: ``fer2013.csv`` (``emotion,pixels,Usage``; plain or ``.gz``) and
  Microsoft's FER+ vote file ``fer2013new.csv`` (row-aligned with fer2013.csv),
- :mod:`~edgefer.compile.data.folder`: an image-folder layout ``ROOT/<split>/<class>/*.png|jpg``,
- :mod:`~edgefer.compile.data.cew`: an eye-patch manifest ``ROOT/manifest.csv`` (the CEW layout): split into
  train/val/test by a hash of the face, never by patch,
- :mod:`~edgefer.compile.data.rafdb`: RAF-DB's basic-emotion training split (``labels.csv`` + ``train/``), with a
  hashed, stratified validation slice (its test split is held out and never read),
- :mod:`~edgefer.compile.data.aflw2000`: AFLW2000-3D head poses (``pose.csv``: yaw, pitch, roll and 68 landmarks per
  image, with its own train/val split column) for the head-pose student and its evaluation,
- :mod:`~edgefer.compile.data.yawdd`: a yawn frame list ``ROOT/frames.csv`` (YawDD frames): the runtime's face detector
  finds the mouth, the runtime's crop cuts it; split by a hash of the session group.

Every reader returns a :class:`FaceSet` of uint8 grey images. A malformed row or file raises
:class:`DataError` naming the file and line. :func:`load_dataset` and :func:`dataset_info` tell the formats apart
for the CLI; the names below are the package's public surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgefer.compile.data.cew import (
    EYE_COLUMNS,
    EYE_LABELS,
    EYE_MANIFEST,
    EYE_SIZE,
    EYE_SPLIT_SALT,
    EYE_SPLIT_SHARES,
    eye_manifest_path,
    face_split,
    read_eye_manifest,
    read_eye_manifest_cached,
)
from edgefer.compile.data.common import (
    FER_LABELS,
    IMAGE_SUFFIXES,
    DataError,
    FaceSet,
    file_sha256,
    hashed_split,
    save_npz_atomic,
)
from edgefer.compile.data.fer2013 import (
    FER_SIZE,
    FER_SPLITS,
    FERPLUS_COLUMNS,
    FERPLUS_TO_FER,
    ferplus_majority,
    ferplus_soft_labels,
    load_fer2013_cached,
    read_fer2013_csv,
    read_ferplus_votes,
)
from edgefer.compile.data.folder import (
    FOLDER_ALIASES,
    FOLDER_VAL_SHARE,
    OTHER_EXPRESSIONS,
    _held_out,
    is_class_folder,
    read_class_folder,
    read_image_folder,
)
from edgefer.compile.data.mix import MIX_ROW_STRIDE, load_mix, resize_faces, source_of_rows
from edgefer.compile.data.rafdb import (
    RAFDB_SPLIT_SALT,
    RAFDB_VAL_SHARE,
    rafdb_csv_path,
    rafdb_split,
    rafdb_val_mask,
    read_rafdb,
    read_rafdb_cached,
)
from edgefer.compile.data.yawdd import (
    YAWN_COLUMNS,
    YAWN_CROP_IOD,
    YAWN_CSV,
    YAWN_LABELS,
    YAWN_SIZE,
    YAWN_SOURCE_TEST,
    YAWN_SPLIT_SALT,
    YAWN_SPLIT_SHARES,
    YawnFrames,
    detect_mouths,
    detect_mouths_cached,
    mouth_crop,
    read_yawn_frames,
    read_yawn_frames_cached,
    read_yawn_rows,
    yawn_csv_path,
    yawn_split,
)

__all__ = [
    "DataError", "DataSpec", "EYE_COLUMNS", "EYE_LABELS", "EYE_MANIFEST", "EYE_SIZE", "EYE_SPLIT_SALT",
    "EYE_SPLIT_SHARES", "FERPLUS_COLUMNS", "FERPLUS_TO_FER", "FER_LABELS", "FER_SIZE", "FER_SPLITS", "FOLDER_ALIASES",
    "FOLDER_VAL_SHARE", "FaceSet", "IMAGE_SUFFIXES", "MIX_ROW_STRIDE", "OTHER_EXPRESSIONS", "RAFDB_SPLIT_SALT",
    "RAFDB_VAL_SHARE", "YAWN_COLUMNS", "YAWN_CROP_IOD", "YAWN_CSV", "YAWN_LABELS", "YAWN_SIZE", "YAWN_SOURCE_TEST",
    "YAWN_SPLIT_SALT", "YAWN_SPLIT_SHARES", "YawnFrames", "dataset_info", "detect_mouths", "detect_mouths_cached",
    "eye_manifest_path", "face_split", "ferplus_majority", "ferplus_soft_labels", "file_sha256", "hashed_split",
    "is_class_folder", "load_dataset", "load_fer2013_cached", "mouth_crop", "rafdb_csv_path", "rafdb_split",
    "rafdb_val_mask", "read_class_folder", "read_eye_manifest", "read_eye_manifest_cached", "read_fer2013_csv",
    "read_ferplus_votes", "read_image_folder", "read_rafdb", "read_rafdb_cached", "read_yawn_frames",
    "read_yawn_frames_cached", "read_yawn_rows", "resize_faces", "save_npz_atomic", "source_of_rows", "yawn_csv_path",
    "yawn_split",
]

#: What the CLI and the steps take as data: one path, or several trained as one (a mix, compile/data/mix.py).
DataSpec = str | Path | Sequence[str | Path]


def _one_or_many(data: DataSpec) -> str | Path | list[str | Path]:
    if isinstance(data, (str, Path)):
        return data
    paths = list(data)
    if not paths:
        raise DataError("no data path given")
    return paths[0] if len(paths) == 1 else paths


def load_dataset(path: DataSpec, split: str, size: int | None = None) -> FaceSet:
    """One entry point for the CLI: a fer2013.csv(.gz), an image-folder root (train/, optional val/, test/),
    an eye-patch manifest (``manifest.csv`` or its folder) or a yawn frame set (``frames.csv`` or its folder;
    splits train/val/test by session group, plus ``yawn_test``, the source's own leaky test folder).

    Splits are named as in fer2013.csv (Training, PublicTest = validation, PrivateTest = test) or train/val/test.
    Several paths make a mix (compile/data/mix.py). ``size``: the images' side (a teacher's larger input; RAF-DB
    is read at it from its 100-px originals, other sets are resized); default: the format's own.
    """
    path = _one_or_many(path)
    if isinstance(path, list):
        return load_mix(path, split, size, load_dataset, dataset_info)
    path = Path(path)
    rafdb_csv = rafdb_csv_path(path)
    if rafdb_csv is not None:
        canonical = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}.get(split, split)
        return rafdb_split(read_rafdb_cached(rafdb_csv, size or 48), canonical, str(rafdb_csv))
    faces = _load_one(path, split)
    return resize_faces(faces, size) if size else faces


def _load_one(path: Path, split: str) -> FaceSet:
    split_csv = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}.get(split, split)
    manifest = eye_manifest_path(path)
    if manifest is not None:
        canonical = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}.get(split_csv, split)
        if canonical not in EYE_SPLIT_SHARES:
            raise DataError(f"{manifest}: unknown split {split!r}; one of {', '.join(EYE_SPLIT_SHARES)}")
        eyes = read_eye_manifest_cached(manifest)
        return eyes.subset(face_split(eyes.groups) == canonical)
    frames_csv = yawn_csv_path(path)
    if frames_csv is not None:
        canonical = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}.get(split_csv, split)
        return yawn_split(read_yawn_frames_cached(frames_csv), canonical)
    if path.is_dir():
        folder = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}.get(split_csv, split)
        if folder in ("train", "val") and not (path / "val").is_dir():
            train = read_image_folder(path, "train")
            held = _held_out(len(train), train.targets)
            return train.subset(held if folder == "val" else ~held)
        return read_image_folder(path, folder)
    if path.name.endswith((".csv", ".csv.gz")):
        sets = load_fer2013_cached(path)
        if split_csv not in sets:
            raise DataError(f"{path}: no rows with Usage {split_csv!r}; present: {', '.join(sets)}")
        return sets[split_csv]
    raise DataError(f"{path}: expected fer2013.csv(.gz) or an image folder with train/ and test/")


def dataset_info(path: DataSpec) -> dict:
    """What a data path holds, for the model contract: task, name, split names and how they were drawn."""
    path = _one_or_many(path)
    if isinstance(path, list):
        parts = [dataset_info(p) for p in path]
        return {"task": parts[0]["task"], "name": "+".join(p["name"] for p in parts),
                "source": "+".join(p["source"] for p in parts), "format": "mix", "train": "train",
                "validation": "val", "test": "test" if any(p["test"] for p in parts) else None,
                "default_test_split": "test" if any(p["test"] for p in parts) else "val",
                "split": {"by": "each source's own splits, joined; row key = source index * "
                                f"{MIX_ROW_STRIDE} + the source's row"},
                "parts": parts}
    path = Path(path)
    manifest = eye_manifest_path(path)
    if manifest is not None:
        return {"task": "eye_state", "name": "CEW" if "cew" in str(manifest.parent).lower() else manifest.parent.name,
                "source": manifest.parent.name, "format": "eye manifest", "train": "train", "validation": "val",
                "test": "test", "default_test_split": "test",
                "split": {"by": "identity_if_known, else source_face (both eyes of a face stay together)",
                          "method": "sha1(salt:group) -> [0,1)", "salt": EYE_SPLIT_SALT,
                          "shares": EYE_SPLIT_SHARES}}
    frames_csv = yawn_csv_path(path)
    if frames_csv is not None:
        return {"task": "yawn", "name": "YawDD" if "yawn" in str(frames_csv.parent).lower() else frames_csv.parent.name,
                "source": frames_csv.parent.name, "format": "yawn frames.csv", "train": "train", "validation": "val",
                "test": "test", "default_test_split": "test", "source_test_folder": YAWN_SOURCE_TEST,
                "split": {"by": "session_group (about one driver session; every group in exactly one split)",
                          "method": "sha1(salt:group) -> [0,1)", "salt": YAWN_SPLIT_SALT,
                          "shares": YAWN_SPLIT_SHARES,
                          "train_frames": "source train folders only (the source test folder is never trained on)"}}
    rafdb_csv = rafdb_csv_path(path)
    if rafdb_csv is not None:
        return {"task": "expression", "name": "RAF-DB", "source": rafdb_csv.parent.name,
                "format": "RAF-DB labels.csv + train/", "train": "train", "validation": "val", "test": None,
                "default_test_split": "val",
                "split": {"by": "image name, per class (stratified); RAF-DB's own test split is held out",
                          "method": "in each class the share with the smallest sha1(salt:name)",
                          "salt": RAFDB_SPLIT_SALT, "shares": {"val": RAFDB_VAL_SHARE}}}
    if path.is_dir():
        return {"task": "expression", "name": path.name, "source": path.name, "format": "image folder",
                "train": "train", "validation": "val", "test": "test", "default_test_split": "test"}
    return {"task": "expression", "name": "FER2013", "source": path.name, "format": "fer2013.csv",
            "train": "Training", "validation": "PublicTest", "test": "PrivateTest",
            "default_test_split": "PrivateTest"}
