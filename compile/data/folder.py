"""An image-folder layout ``ROOT/<split>/<class>/*.png|jpg`` (class folder names may use common aliases)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.compile.data.common import FER_LABELS, IMAGE_SUFFIXES, DataError, FaceSet, _read_grey
from edgefer.compile.data.fer2013 import FER_SIZE

#: Folder names seen in the wild for the FER2013 classes (e.g. the atulapra/Emotion-detection export).
FOLDER_ALIASES = {
    "angry": "angry", "anger": "angry", "disgust": "disgust", "disgusted": "disgust", "fear": "fear",
    "fearful": "fear", "happy": "happy", "happiness": "happy", "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "neutral": "neutral",
}


#: Expression folder names of classes outside the FER2013 set (e.g. CK+ and AffectNet's contempt): a flat class
#: folder (:func:`read_class_folder`) skips and counts them instead of refusing the set.
OTHER_EXPRESSIONS = ("contempt", "contemptuous")


def _class_files(base: Path, labels: tuple[str, ...], skip: tuple[str, ...] = ()
                 ) -> tuple[list[Path], list[int], dict[str, int]]:
    """Image files under ``base/<class>/``, their label indices, and the image count of each skipped folder."""
    files, targets, skipped = [], [], {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        name = FOLDER_ALIASES.get(folder.name.lower(), folder.name.lower())
        images = [f for f in sorted(folder.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
        if name not in labels and name in skip:
            skipped[folder.name] = len(images)
            continue
        if name not in labels:
            raise DataError(f"{folder}: class folder {folder.name!r} is not one of {', '.join(labels)}"
                            + (f" (or {', '.join(skip)}, skipped)" if skip else ""))
        files += images
        targets += [labels.index(name)] * len(images)
    return files, targets, skipped


def read_image_folder(root: str | Path, split: str, size: int = FER_SIZE,
                      labels: tuple[str, ...] = FER_LABELS) -> FaceSet:
    """Read ``root/<split>/<class>/*`` images; class folder names may use common aliases (``happiness``...)."""
    base = Path(root) / split
    if not base.is_dir():
        raise DataError(f"{base}: no such folder; expected {root}/{split}/<class>/*.png")
    files, targets, _ = _class_files(base, labels)
    if not files:
        raise DataError(f"{base}: no images found under <class>/ folders")
    return FaceSet(np.stack([_read_grey(f, size) for f in files]), np.array(targets, dtype=np.int64), labels,
                   f"{base}")


def is_class_folder(root: str | Path) -> bool:
    """Whether ``root`` is a flat labelled set ``root/<class>/*`` (every sub-folder an expression name)."""
    root = Path(root)
    names = [p.name.lower() for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return bool(names) and all(n in FOLDER_ALIASES or n in OTHER_EXPRESSIONS for n in names)


def read_class_folder(root: str | Path, size: int = FER_SIZE, labels: tuple[str, ...] = FER_LABELS
                      ) -> tuple[FaceSet, dict[str, int]]:
    """A flat labelled set ``root/<class>/*`` (a test set as users hand it over; aliases as in
    :data:`FOLDER_ALIASES`). Folders of :data:`OTHER_EXPRESSIONS` are skipped; returns the faces (``groups``:
    each image's path relative to ``root``) and the image count of each skipped folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; expected {root}/<class>/*.png with class folders named "
                        f"{', '.join(labels)}")
    files, targets, skipped = _class_files(root, labels, OTHER_EXPRESSIONS)
    if not files:
        raise DataError(f"{root}: no images found under <class>/ folders (expected {root}/<class>/*.png, "
                        f"image suffixes {', '.join(IMAGE_SUFFIXES)})")
    faces = FaceSet(np.stack([_read_grey(f, size) for f in files]), np.array(targets, dtype=np.int64), labels,
                    f"{root}", groups=np.array([str(f.relative_to(root)) for f in files], dtype=object))
    return faces, skipped


#: Share of train/ held out for validation when an image folder has no val/ (choosing on test/ would flatter).
FOLDER_VAL_SHARE = 0.1


def _held_out(n: int, targets: np.ndarray) -> np.ndarray:
    """Deterministic, class-stratified validation mask over a folder's training images."""
    mask = np.zeros(n, dtype=bool)
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        mask[idx[:: max(2, round(1 / FOLDER_VAL_SHARE))]] = True
    return mask
