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


def read_image_folder(root: str | Path, split: str, size: int = FER_SIZE,
                      labels: tuple[str, ...] = FER_LABELS) -> FaceSet:
    """Read ``root/<split>/<class>/*`` images; class folder names may use common aliases (``happiness``...)."""
    base = Path(root) / split
    if not base.is_dir():
        raise DataError(f"{base}: no such folder; expected {root}/{split}/<class>/*.png")
    images, targets = [], []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        name = FOLDER_ALIASES.get(folder.name.lower(), folder.name.lower())
        if name not in labels:
            raise DataError(f"{folder}: class folder {folder.name!r} is not one of {', '.join(labels)}")
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            images.append(_read_grey(file, size))
            targets.append(labels.index(name))
    if not images:
        raise DataError(f"{base}: no images found under <class>/ folders")
    return FaceSet(np.stack(images), np.array(targets, dtype=np.int64), labels, f"{base}")


#: Share of train/ held out for validation when an image folder has no val/ (choosing on test/ would flatter).
FOLDER_VAL_SHARE = 0.1


def _held_out(n: int, targets: np.ndarray) -> np.ndarray:
    """Deterministic, class-stratified validation mask over a folder's training images."""
    mask = np.zeros(n, dtype=bool)
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        mask[idx[:: max(2, round(1 / FOLDER_VAL_SHARE))]] = True
    return mask
