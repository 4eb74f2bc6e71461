"""A yawn frame list ``ROOT/frames.csv`` (``file,split,label,run_id,session_group,...``, YawDD frames): the
runtime's face detector finds the mouth, the runtime's crop cuts it; split by a hash of the session group."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.compile.data.common import IMAGE_SUFFIXES, DataError, FaceSet, _rows, hashed_split, save_npz_atomic

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
    keypoints placed by :func:`edgefer.edge.crop.keypoints_from_box` (what the runtime does for a box without
    keypoints).
    The driver is the face :func:`edgefer.edge.tracking.rank_faces` ranks first.

    Returns ``detector`` [rows] ("blazeface" / "haar" / "none") and ``keypoints`` [rows, 4, 2] (right_eye,
    left_eye, nose, mouth; NaN where no face)."""
    from edgefer.edge import detectors
    from edgefer.edge.crop import keypoints_from_box
    from edgefer.edge.tracking import TrackingConfig, rank_faces

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
    from edgefer.edge.crop import crop_rotated, eye_line

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
    mask = hashed_split(faces.groups, shares, salt) == split
    if split == "train":
        mask &= frames.source_split[faces.rows] == "train"
    return faces.subset(mask)
