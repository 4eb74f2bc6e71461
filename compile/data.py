"""Readers for the data formats users actually have.

- ``fer2013.csv`` (``emotion,pixels,Usage``; plain or ``.gz``),
- Microsoft's FER+ vote file ``fer2013new.csv`` (row-aligned with fer2013.csv),
- an image-folder layout ``ROOT/<split>/<class>/*.png|jpg``,
- an eye-patch manifest ``ROOT/manifest.csv`` (``file,label,eye,source_face[,identity_if_known]``, the CEW
  layout): split into train/val/test by a hash of the face, never by patch,
- a yawn frame list ``ROOT/frames.csv`` (``file,split,label,run_id,session_group,...``, YawDD frames): the
  runtime's face detector finds the mouth, the runtime's crop cuts it; split by a hash of the session group.

Every reader returns a :class:`FaceSet` of uint8 grey images. A malformed row or file raises
:class:`DataError` naming the file and line.
"""

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

#: FER2013's label order (column ``emotion``), which the shipped expression models keep.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm")
#: Folder names seen in the wild for the FER2013 classes (e.g. the atulapra/Emotion-detection export).
FOLDER_ALIASES = {
    "angry": "angry", "anger": "angry", "disgust": "disgust", "disgusted": "disgust", "fear": "fear",
    "fearful": "fear", "happy": "happy", "happiness": "happy", "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "neutral": "neutral",
}


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


def _read_grey(path: Path, size: int) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (expected {', '.join(IMAGE_SUFFIXES)})")
    if image.shape != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image


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


def load_dataset(path: str | Path, split: str) -> FaceSet:
    """One entry point for the CLI: a fer2013.csv(.gz), an image-folder root (train/, optional val/, test/),
    an eye-patch manifest (``manifest.csv`` or its folder) or a yawn frame set (``frames.csv`` or its folder;
    splits train/val/test by session group, plus ``yawn_test``, the source's own leaky test folder).

    Splits are named as in fer2013.csv (Training, PublicTest = validation, PrivateTest = test) or train/val/test.
    """
    path = Path(path)
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


# --- eye patches (CEW layout) -------------------------------------------------------------------------------

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


def dataset_info(path: str | Path) -> dict:
    """What a data path holds, for the model contract: task, name, split names and how they were drawn."""
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
    if path.is_dir():
        return {"task": "expression", "name": path.name, "source": path.name, "format": "image folder",
                "train": "train", "validation": "val", "test": "test", "default_test_split": "test"}
    return {"task": "expression", "name": "FER2013", "source": path.name, "format": "fer2013.csv",
            "train": "Training", "validation": "PublicTest", "test": "PrivateTest",
            "default_test_split": "PrivateTest"}


# --- yawn frames (YawDD via Kaggle yawn_eye_dataset_new, frames.csv layout) ----------------------------------

#: Yawn labels in output order (the runtime reads the probability of "yawn").
YAWN_LABELS: tuple[str, ...] = ("no_yawn", "yawn")
YAWN_CSV = "frames.csv"
YAWN_COLUMNS = ("file", "split", "label", "run_id", "session_group")
#: Side of the (square) mouth crop the yawn model sees, in pixels.
YAWN_SIZE = 32
#: Side of the mouth crop in inter-ocular distances, chosen on val groups by tools/measure_mouth_crop.py (3 seeds,
#: val accuracy 1.2: 0.904, 1.4: 0.917, 1.6: 0.911, 2.0: 0.863; 1.4 also keeps a wide-open mouth and the chin).
YAWN_CROP_IOD = 1.4
#: Share of session groups per split; test is never used for choosing anything.
YAWN_SPLIT_SHARES = {"train": 0.7, "val": 0.15, "test": 0.15}
YAWN_SPLIT_SALT = "edgefer-yawn-v1"
#: The source's own test folder: 213 of its 215 frames share a clip with training frames, so it flatters.
YAWN_SOURCE_TEST = "yawn_test"
#: Bump when the detection or crop code changes, so cached crops are recomputed.
YAWN_CACHE_VERSION = "1"
_MOUTH_KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth")


def yawn_csv_path(path: str | Path) -> Path | None:
    """The frames.csv when ``path`` is a yawn frame set (the file itself or its folder), else None."""
    path = Path(path)
    if path.is_dir() and (path / YAWN_CSV).is_file():
        with open(path / YAWN_CSV, encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
        if header.startswith(",".join(YAWN_COLUMNS)):
            return path / YAWN_CSV
        return None
    if path.name == YAWN_CSV:
        return path
    return None


@dataclass
class YawnFrames:
    """Every row of a frames.csv after face detection: the mouth crops of the frames with a face.

    ``faces`` holds the frames where a face was found (``rows`` index the csv's data rows); per-row arrays
    (length = csv rows) say which detector found the face ("blazeface", "haar" or "none") and the source split.
    """

    faces: FaceSet
    detector: np.ndarray  # object [rows]
    source_split: np.ndarray  # object [rows]: train / test (the source's own folders)
    groups: np.ndarray  # object [rows]: session_group of every row
    size_iod: float
    source: str = ""

    def detection_counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        picked = self.detector if rows is None else self.detector[rows]
        counts = {k: int((picked == k).sum()) for k in ("blazeface", "haar", "none")}
        counts["frames"] = int(len(picked))
        counts["face_found_share"] = round((counts["blazeface"] + counts["haar"]) / max(1, len(picked)), 4)
        return counts


def _read_frame_grey(path: Path) -> np.ndarray:
    """A frame as the runtime sees it: decoded in colour, then converted (cv2.COLOR_BGR2GRAY)."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (expected {', '.join(IMAGE_SUFFIXES)})")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        raise DataError(f"{path}: {image.dtype} pixels, expected 8-bit")
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def read_yawn_rows(path: str | Path, labels: tuple[str, ...] = YAWN_LABELS) -> list[dict]:
    """Check and read frames.csv (``file,split,label,run_id,session_group,...``); paths are relative to its folder.

    Returns one dict per data row (line, file path, split, label index, run, group). Raises DataError naming
    the file and line for a bad row or a missing image."""
    path = Path(path)
    root = path.parent
    out: list[dict] = []
    seen: dict[str, int] = {}
    for line, row in _rows(path, YAWN_COLUMNS):
        if len(row) < len(YAWN_COLUMNS):
            raise DataError(f"{path}:{line}: expected at least {len(YAWN_COLUMNS)} fields "
                            f"{','.join(YAWN_COLUMNS)}, got {len(row)}")
        file, split, label, run, group = (v.strip() for v in row[:5])
        if label not in labels:
            raise DataError(f"{path}:{line}: label {label!r} is not one of {', '.join(labels)}")
        if split not in ("train", "test"):
            raise DataError(f"{path}:{line}: split {split!r} is not train or test")
        if not file or not run or not group:
            raise DataError(f"{path}:{line}: empty file, run_id or session_group")
        if file in seen:
            raise DataError(f"{path}:{line}: {file} is listed twice (first on line {seen[file]})")
        seen[file] = line
        if not (root / file).is_file():
            raise DataError(f"{path}:{line}: {root / file}: no such file")
        out.append({"line": line, "file": root / file, "split": split, "target": labels.index(label),
                    "run": run, "group": group})
    if not out:
        raise DataError(f"{path}: header only, no data rows")
    return out


def detect_mouths(path: str | Path, rows: list[dict] | None = None) -> dict[str, np.ndarray]:
    """Run the runtime's face detection on every frame of frames.csv: BlazeFace, else the Haar cascade with
    keypoints placed by :func:`edge.crop.keypoints_from_box` (what the runtime does for a box without keypoints).
    The driver is the face :func:`edge.tracking.rank_faces` ranks first.

    Returns ``detector`` [rows] ("blazeface" / "haar" / "none") and ``keypoints`` [rows, 4, 2] (right_eye,
    left_eye, nose, mouth; NaN where no face)."""
    from edge import detectors
    from edge.crop import keypoints_from_box
    from edge.tracking import TrackingConfig, rank_faces

    path = Path(path)
    rows = rows if rows is not None else read_yawn_rows(path)
    blaze = detectors.create({"type": "blazeface"})
    haar = detectors.create({"type": "haar"})
    tracking = TrackingConfig()
    found = np.empty(len(rows), dtype=object)
    keypoints = np.full((len(rows), len(_MOUTH_KEYPOINTS), 2), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        try:
            gray = _read_frame_grey(row["file"])
        except DataError as exc:
            raise DataError(f"{path}:{row['line']}: {exc}") from None
        found[i] = "none"
        for name in ("blazeface", "haar"):
            faces = rank_faces((blaze if name == "blazeface" else haar).detect(gray), gray.shape, tracking)
            if faces:
                kps = faces[0].keypoints or keypoints_from_box(faces[0].box)
                keypoints[i] = [kps[k] for k in _MOUTH_KEYPOINTS]
                found[i] = name
                break
    return {"detector": found, "keypoints": keypoints}


def mouth_crop(gray: np.ndarray, keypoints: np.ndarray | dict, size_iod: float, size: int = YAWN_SIZE) -> np.ndarray:
    """The runtime's mouth crop (edge/monitor.py): a square of ``size_iod`` x IOD centred on the mouth keypoint,
    rotated so the eye line is level, ``size`` x ``size``, bilinear."""
    from edge.crop import crop_rotated, eye_line

    if not isinstance(keypoints, dict):
        keypoints = {k: (float(x), float(y)) for k, (x, y) in zip(_MOUTH_KEYPOINTS, keypoints, strict=True)}
    iod, angle = eye_line(keypoints)
    return crop_rotated(gray, keypoints["mouth"], size_iod * max(iod, 1.0), angle, (size, size))


def _yawn_cache_dir(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir) if cache_dir else Path.home() / ".cache" / "edgefer"


def _yawn_key(path: Path, *extra) -> str:
    stat = path.stat()
    text = ":".join(str(v) for v in (path.resolve(), stat.st_size, stat.st_mtime_ns, YAWN_CACHE_VERSION, *extra))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def detect_mouths_cached(path: str | Path, rows: list[dict] | None = None,
                         cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """detect_mouths with an .npz cache keyed by the csv's size and mtime (detection takes ~20 ms a frame)."""
    path = Path(path)
    cache = _yawn_cache_dir(cache_dir) / f"yawn-faces-{_yawn_key(path)}.npz"
    if cache.is_file():
        blob = np.load(cache, allow_pickle=False)
        return {"detector": blob["detector"].astype(object), "keypoints": blob["keypoints"]}
    found = detect_mouths(path, rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(cache, detector=found["detector"].astype(str), keypoints=found["keypoints"])
    return found


def read_yawn_frames(path: str | Path, size: int = YAWN_SIZE, size_iod: float = YAWN_CROP_IOD,
                     labels: tuple[str, ...] = YAWN_LABELS, cache_dir: str | Path | None = None) -> YawnFrames:
    """Read frames.csv, find the driver's face in every frame and cut the mouth as the runtime does.

    Frames without a face are left out of ``faces`` (the runtime has no yawn reading there) and counted in
    ``detector``. ``faces.groups`` holds the session_group (the split key), ``faces.rows`` the csv data row.
    Crops are cached as .npz under ~/.cache/edgefer, keyed by the csv, ``size`` and ``size_iod``."""
    path = Path(path)
    rows = read_yawn_rows(path, labels)
    found = detect_mouths_cached(path, rows, cache_dir)
    cache = _yawn_cache_dir(cache_dir) / f"yawn-crops-{_yawn_key(path, size, size_iod)}.npz"
    has_face = found["detector"] != "none"
    if cache.is_file():
        images = np.load(cache)["images"]
    else:
        images = np.zeros((int(has_face.sum()), size, size), dtype=np.uint8)
        for j, i in enumerate(np.flatnonzero(has_face)):
            try:
                gray = _read_frame_grey(rows[i]["file"])
            except DataError as exc:
                raise DataError(f"{path}:{rows[i]['line']}: {exc}") from None
            images[j] = mouth_crop(gray, found["keypoints"][i], size_iod, size)
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_npz_atomic(cache, images=images)
    idx = np.flatnonzero(has_face)
    groups = np.array([r["group"] for r in rows], dtype=object)
    faces = FaceSet(images, np.array([rows[i]["target"] for i in idx], dtype=np.int64), labels, path.parent.name,
                    idx.astype(np.int64), groups[idx])
    return YawnFrames(faces, found["detector"], np.array([r["split"] for r in rows], dtype=object), groups,
                      size_iod, path.parent.name)


_YAWN_CACHE: dict[tuple, YawnFrames] = {}


def read_yawn_frames_cached(path: str | Path, size: int = YAWN_SIZE, size_iod: float = YAWN_CROP_IOD) -> YawnFrames:
    """read_yawn_frames, kept in memory per (csv, size, size_iod, mtime): each toolchain step reads it twice."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), size, size_iod, stat.st_size, stat.st_mtime_ns)
    if key not in _YAWN_CACHE:
        _YAWN_CACHE.clear()
        _YAWN_CACHE[key] = read_yawn_frames(path, size, size_iod)
    return _YAWN_CACHE[key]


def yawn_split(frames: YawnFrames, split: str, shares: dict[str, float] = YAWN_SPLIT_SHARES,
               salt: str = YAWN_SPLIT_SALT) -> FaceSet:
    """One split of the frames with a face. Session groups are hashed into train/val/test (every group in
    exactly one). ``train`` holds only the source's train folders; ``val`` and ``test`` hold every frame of
    their groups (both folders: none of them is trained on). ``yawn_test`` is the source's own test folder,
    which shares clips with the training frames (optimistic; never use it for choosing)."""
    faces = frames.faces
    if split == YAWN_SOURCE_TEST:
        return faces.subset(frames.source_split[faces.rows] == "test")
    if split not in shares:
        raise DataError(f"{frames.source}: unknown split {split!r}; one of {', '.join(shares)}, {YAWN_SOURCE_TEST}")
    mask = face_split(faces.groups, shares, salt) == split
    if split == "train":
        mask &= frames.source_split[faces.rows] == "train"
    return faces.subset(mask)
