"""A labelled expression set to score, from whatever path a user brings: a flat ``<class>/`` folder, a RAF-DB folder
(its validation slice only), an image-folder root with train/val/test, or a fer2013.csv(.gz); read at any size, with
the image files kept in order for photos mode (``tools/heldout_check.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgefer.compile.data import (
    FER_LABELS,
    DataError,
    FaceSet,
    is_class_folder,
    load_dataset,
    rafdb_csv_path,
    read_class_folder,
)


@dataclass
class LabelledSet:
    """One set to score: where it came from, how its images are read at a size, and what was skipped."""

    path: Path
    kind: str  # "class folder", "image folder", "RAF-DB", "fer2013.csv"
    split: str | None
    skipped: dict[str, int] = field(default_factory=dict)
    files: list[Path] | None = None  # the image files in order (photos mode needs them); None for a CSV
    _by_size: dict[int, FaceSet] = field(default_factory=dict)

    def faces(self, size: int) -> FaceSet:
        if size not in self._by_size:
            self._by_size[size] = _read_set(self.path, self.kind, self.split, size)[0]
        return self._by_size[size]


def _read_set(path: Path, kind: str, split: str | None, size: int) -> tuple[FaceSet, dict[str, int]]:
    if kind == "class folder":
        return read_class_folder(path, size)
    if kind == "image folder":
        return read_class_folder(path / split, size) if split else (load_dataset(path, "val", size), {})
    return load_dataset(path, split, size), {}


def open_set(path: str | Path, split: str | None = None) -> LabelledSet:
    """A labelled set from a path: a flat ``<class>/`` folder, a RAF-DB folder (val slice), an image-folder root
    (``split``: train/val/test, default test) or a fer2013.csv(.gz) (default PrivateTest). Anything else is a
    DataError naming the path and the layouts expected."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; expected a labelled set: SET_DIR/<class>/*.jpg, a RAF-DB "
                        "folder (labels.csv + train/), an image-folder root (train/ val/ test/) or fer2013.csv")
    if rafdb_csv_path(path) is not None:
        if split not in (None, "val", "PublicTest"):
            raise DataError(f"{path}: a RAF-DB folder is scored on its validation slice only (its test split is "
                            f"held out and not here), not on --split {split}")
        root = rafdb_csv_path(path).parent
        held = LabelledSet(path, "RAF-DB", "val")
        faces = held.faces(48)
        held.files = [root / "train" / name for name in faces.groups]
        return held
    if path.is_dir() and is_class_folder(path):
        held = LabelledSet(path, "class folder", None)
        faces, held.skipped = read_class_folder(path, 48)
        held._by_size[48] = faces
        held.files = [path / name for name in faces.groups]
        return held
    if path.is_dir():
        wanted = split or "test"
        folder = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}.get(wanted, wanted)
        if (path / folder).is_dir():
            if not is_class_folder(path / folder):
                raise DataError(f"{path / folder}: expected class folders named {', '.join(FER_LABELS)} "
                                "(or their aliases, or contempt) and nothing else")
            held = LabelledSet(path, "image folder", folder)
            faces, held.skipped = read_class_folder(path / folder, 48)
            held._by_size[48] = faces
            held.files = [path / folder / name for name in faces.groups]
            return held
        if folder != "val" or not (path / "train").is_dir():
            raise DataError(f"{path}: neither a class folder (<class>/*.jpg with class names "
                            f"{', '.join(FER_LABELS)} or their aliases) nor a split folder with {folder}/; "
                            f"found {', '.join(sorted(p.name for p in path.iterdir())) or 'nothing'}")
        return LabelledSet(path, "image folder", None)  # val carved out of train/ by load_dataset
    wanted = split or "PrivateTest"
    csv_split = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}.get(wanted, wanted)
    held = LabelledSet(path, "fer2013.csv", csv_split)
    held.faces(48)  # reads (and checks) it now, so a bad file fails before any model runs
    return held
