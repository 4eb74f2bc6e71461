"""Small data files in the real formats, generated (no ../shared in tests)."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from edgefer.compile.data import FER_LABELS, FERPLUS_COLUMNS, FERPLUS_TO_FER

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str) -> ModuleType:
    """A script under tools/ (not a package) imported as a module; registered in sys.modules first, since a
    dataclass defined in it looks its module up there."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def synthetic_face(label: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A grey face-like blob whose class is the number of stripes across it (survives flips, shifts and light
    changes, so a tiny net learns it in a few steps), plus noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 110 + 50 * np.sin(2 * np.pi * (label + 1) * xx / size + rng.uniform(0, 2 * np.pi))
    face = ((xx - size / 2) / (size / 2.6)) ** 2 + ((yy - size / 2) / (size / 2.2)) ** 2 < 1
    img = np.where(face, img, 60.0) + rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_fer2013(path: Path, per_split: dict[str, int], seed: int = 0, gz: bool = False) -> np.ndarray:
    """Write fer2013.csv rows (emotion,pixels,Usage); returns the labels in row order."""
    rng = np.random.default_rng(seed)
    labels = []
    with (gzip.open(path, "wt", newline="") if gz else open(path, "w", newline="")) as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage, n in per_split.items():
            for i in range(n):
                label = i % len(FER_LABELS)
                labels.append(label)
                w.writerow([label, " ".join(map(str, synthetic_face(label, rng).ravel())), usage])
    return np.array(labels)


def write_ferplus(path: Path, labels: np.ndarray, seed: int = 0) -> None:
    """fer2013new.csv votes: 10 votes per row, mostly on the row's label; every 11th row is all 'unknown'."""
    rng = np.random.default_rng(seed)
    fer_to_col = {fer: FERPLUS_COLUMNS.index(col) for col, fer in FERPLUS_TO_FER.items()}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for i, label in enumerate(labels):
            votes = [0] * len(FERPLUS_COLUMNS)
            if i % 11 == 10:
                votes[FERPLUS_COLUMNS.index("unknown")] = 10
            else:
                votes[fer_to_col[FER_LABELS[label]]] = 7
                votes[int(rng.integers(0, 7))] += 3
            w.writerow(["Training", f"fer{i:07d}.png", *votes])


def write_image_folder(root: Path, per_class: int, split: str = "train", seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(FER_LABELS):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"im{i}.png"), synthetic_face(label, rng))


def synthetic_eye(label: int, rng: np.random.Generator, size: int = 24) -> np.ndarray:
    """A grey eye-like patch: ``label`` 1 (open) is a dark iris disc in a pale almond, 0 (closed) a dark lid
    line; both on skin of random brightness with noise, jittered in place."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size / 2 + rng.uniform(-1.5, 1.5), size / 2 + rng.uniform(-1.5, 1.5)
    skin = rng.uniform(110, 190)
    img = np.full((size, size), skin, dtype=np.float32)
    if label == 1:
        almond = ((xx - cx) / (size * 0.38)) ** 2 + ((yy - cy) / (size * 0.18)) ** 2 < 1
        img[almond] = skin + 40
        iris = (xx - cx) ** 2 + (yy - cy) ** 2 < (size * rng.uniform(0.15, 0.2)) ** 2
        img[iris & almond] = rng.uniform(20, 60)
    else:
        lid = (np.abs(yy - cy - 0.08 * (xx - cx) ** 2 / (size / 8)) < 1.2) & (np.abs(xx - cx) < size * 0.38)
        img[lid] = rng.uniform(20, 60)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_eye_folder(root: Path, n_faces: int, seed: int = 0) -> list[list[str]]:
    """A CEW-like folder: ``manifest.csv`` (file,label,eye,source_face,identity_if_known) and 24x24 jpgs in
    closedLeftEyes/ ... openRightEyes/; faces alternate closed/open, every third open face has an identity.
    Returns the manifest rows (without the header)."""
    rng = np.random.default_rng(seed)
    rows = []
    for face in range(n_faces):
        label = face % 2
        name = ("closed", "open")[label]
        identity = f"Person_{face}" if label == 1 and face % 3 == 0 else ""
        for eye in ("left", "right"):
            folder = f"{name}{eye.title()}Eyes"
            (root / folder).mkdir(parents=True, exist_ok=True)
            file = f"{folder}/face{face:04d}_{eye[0].upper()}.jpg"
            cv2.imwrite(str(root / file), synthetic_eye(label, rng))
            rows.append([file, name, eye, f"{name}_{face:04d}/face1", identity])
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "eye", "source_face", "identity_if_known"])
        w.writerows(rows)
    return rows


#: grace_hopper.jpg (matplotlib's sample photo, 512x600): BlazeFace's mouth keypoint and inter-ocular distance.
_GRACE_MOUTH = (269.5, 283.8)
_GRACE_IOD = 87.0


def yawn_frame(label: int, rng: np.random.Generator, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A 320x240 colour 'cabin frame': matplotlib's Grace Hopper photo (a real face, so BlazeFace finds it) pasted
    at a random place, scale and brightness, with an open mouth (a dark ellipse, ``label`` 1) or a closed one (a
    thin dark lip line, ``label`` 0) drawn over her mouth."""
    from edgefer.edge.samples import sample_image_path

    w, h = size
    photo = cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_COLOR)
    s = rng.uniform(0.28, 0.38)
    face = cv2.resize(photo, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), rng.uniform(40, 200), dtype=np.float32)
    x0 = int(rng.integers(0, w - face.shape[1] + 1))
    y0 = int(rng.integers(0, h - face.shape[0] + 1))
    frame[y0:y0 + face.shape[0], x0:x0 + face.shape[1]] = face * rng.uniform(0.7, 1.2)
    mx, my = x0 + _GRACE_MOUTH[0] * s, y0 + _GRACE_MOUTH[1] * s
    iod = _GRACE_IOD * s
    dark = tuple(float(v) for v in rng.uniform(10, 50, 3))
    if label == 1:
        axes = (int(iod * rng.uniform(0.22, 0.3)), int(iod * rng.uniform(0.3, 0.42)))
        cv2.ellipse(frame, (int(mx), int(my + iod * 0.1)), axes, 0, 0, 360, dark, -1)
    else:
        half = iod * rng.uniform(0.22, 0.3)
        cv2.line(frame, (int(mx - half), int(my)), (int(mx + half), int(my)), dark, 2)
    frame += rng.normal(0, 4, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_yawn_folder(root: Path, n_groups: int, per_group: int = 2, test_every: int = 5,
                      seed: int = 0) -> list[list[str]]:
    """A YawDD-like folder: ``frames.csv`` (file,split,label,run_id,session_group,...) and 320x240 jpgs in
    yawn/, no_yawn/ and yawn_test/{yawn,no_yawn}/. Every group holds both classes; every ``test_every``-th frame
    goes to the source's test folder. Returns the csv rows (without the header)."""
    rng = np.random.default_rng(seed)
    rows = []
    k = 0
    for g in range(n_groups):
        for i in range(per_group):
            label = (g + i) % 2
            name = ("no_yawn", "yawn")[label]
            k += 1
            split = "test" if k % test_every == 0 else "train"
            folder = root / (f"yawn_test/{name}" if split == "test" else name)
            folder.mkdir(parents=True, exist_ok=True)
            file = f"{folder.relative_to(root).as_posix()}/{k}.jpg"
            image = yawn_frame(label, rng)
            cv2.imwrite(str(root / file), image)
            rows.append([file, split, name, f"{name[0]}{g:03d}", f"g{g:03d}", f"src/{k}.jpg", "0" * 64,
                         str((root / file).stat().st_size), "320", "240"])
    _write_yawn_csv(root, rows)
    return rows


def _write_yawn_csv(root: Path, rows: list[list[str]]) -> None:
    with open(root / "frames.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "split", "label", "run_id", "session_group", "source_path", "source_sha256",
                    "source_bytes", "width", "height"])
        w.writerows(rows)


def write_rafdb(root: Path, per_class: int, seed: int = 0) -> list[tuple[str, int, str]]:
    """A RAF-DB-like folder: ``labels.csv`` (``image,label_id,label``, RAF-DB's ids) and ``train/*_aligned.jpg``
    (100x100 colour JPEGs of the striped faces, class = stripe count as in :func:`synthetic_face`)."""
    ids = {"surprise": 1, "fear": 2, "disgust": 3, "happy": 4, "sad": 5, "angry": 6, "neutral": 7}
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(per_class * len(FER_LABELS)):
        label = i % len(FER_LABELS)
        name = f"train_{i + 1:05d}_aligned.jpg"
        grey = cv2.resize(synthetic_face(label, rng), (100, 100), interpolation=cv2.INTER_LINEAR)
        colour = cv2.merge([grey, np.clip(grey.astype(int) + 12, 0, 255).astype(np.uint8), grey])
        cv2.imwrite(str(root / "train" / name), colour)
        rows.append((name, ids[FER_LABELS[label]], FER_LABELS[label]))
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "label_id", "label"])
        w.writerows(rows)
    return rows


def turned_face(image: np.ndarray, box: tuple[float, float, float, float], yaw: float = 0.0,
                pitch: float = 0.0) -> np.ndarray:
    """A face photo turned in 3-D by ``yaw`` / ``pitch`` degrees (edgefer.edge.headpose's signs: yaw > 0 turns the face
    towards the image's left, pitch > 0 up): the face box is wrapped round a vertical cylinder (for yaw) and a
    horizontal one (for pitch) of the box's half-width, turned, and seen from far away (orthographic). Outside
    the cylinder the photo is unchanged. A flat card turned in 3-D looks to a landmark model like a narrower
    frontal face; on a cylinder the eyes, nose and mouth slide towards the turn as on a real head."""
    h, w = image.shape[:2]
    x, y, bw, bh = box
    cx, cy, radius = x + bw / 2, y + bh / 2, 0.5 * max(bw, bh)
    map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for angle, coord, centre in ((yaw, map_x, cx), (pitch, map_y, cy)):
        if angle == 0.0:
            continue
        offset = (coord - centre) / radius
        inside = np.abs(offset) < 1.0
        theta = np.arcsin(np.clip(offset, -1.0, 1.0)) + np.radians(angle)
        source = centre + radius * np.sin(np.clip(theta, -np.pi / 2, np.pi / 2))
        coord[...] = np.where(inside, source, coord)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
