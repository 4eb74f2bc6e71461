"""torch -> ONNX (opset 17, static) -> onnx2tf full-integer int8 TFLite, with a parity gate.

The int8 input carries the raw pixel: onnx2tf's calibration is fed raw 0..255 pixels (mean 0, std 1), which
gives input scale 1.0 and zero point -128, so the device feeds ``pixel - 128`` and never normalises.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from edgefer.compile.data import FaceSet
from edgefer.edge.qdq import QdqArithmetic, session_options

OPSET = 17
INPUT_NAME = "input"


class ParityError(RuntimeError):
    """The converted model disagrees with the float model beyond the documented bound."""


class ParityBounds(BaseModel):
    """The build fails when the int8 model drifts further than this from the float ONNX on the test split."""

    model_config = ConfigDict(extra="forbid")

    max_accuracy_drop: float = Field(0.005, ge=0, le=1, description="float ONNX acc - int8 acc, as a fraction")
    min_top1_agreement: float = Field(0.97, ge=0, le=1, description="share of faces with the same top-1")
    max_float_tflite_logit_diff: float = Field(1e-3, gt=0, description="float TFLite vs ONNX, max |logit| diff")


def export_onnx(model: nn.Module, path: str | Path, size: int = 48) -> Path:
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    example = torch.zeros(1, 1, size, size)
    torch.onnx.export(model, (example,), str(path), opset_version=OPSET, dynamo=False,
                      input_names=[INPUT_NAME], output_names=["logits"])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def calibration_images(data: FaceSet, count: int = 400, seed: int = 0) -> np.ndarray:
    """A class-stratified sample of training crops, raw pixels, plus one black and one white frame so the
    input range covers 0..255 whatever the sample holds."""
    rng = np.random.default_rng(seed)
    per_class = max(1, count // len(data.labels))
    picks = []
    for c in range(len(data.labels)):
        idx = np.flatnonzero(data.targets == c)
        if idx.size:
            picks.append(rng.choice(idx, size=min(per_class, idx.size), replace=False))
    chosen = data.images[np.concatenate(picks)]
    extremes = np.stack([np.zeros_like(chosen[0]), np.full_like(chosen[0], 255)])
    return np.concatenate([chosen, extremes]).astype(np.float32)


def convert_int8(onnx_path: str | Path, calib: np.ndarray, out_dir: str | Path) -> dict[str, Path]:
    """Run onnx2tf; returns {'int8': ..., 'float32': ...} TFLite paths inside ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="onnx2tf-"))
    try:
        model_in = work / "model.onnx"
        shutil.copy(onnx_path, model_in)  # onnx2tf overwrites its -i file with the onnxsim output
        calib_path = work / "calib_nhwc.npy"
        np.save(calib_path, calib[..., None].astype(np.float32))
        env = dict(os.environ)
        # onnx2tf runs the onnxsim CLI by name and silently skips it when the venv's bin is not on PATH.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        cmd = [
            str(Path(sys.executable).parent / "onnx2tf"), "-i", str(model_in), "-o", str(work / "o2t"), "-oiqt",
            "-cind", INPUT_NAME, str(calib_path), "[[[[0.0]]]]", "[[[[1.0]]]]", "-iqd", "int8", "-oqd", "int8",
        ]
        if not Path(cmd[0]).exists():
            cmd[0] = shutil.which("onnx2tf") or "onnx2tf"
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        (out_dir / "onnx2tf.log").write_text(proc.stdout + proc.stderr)
        found = {"int8": work / "o2t" / "model_full_integer_quant.tflite",
                 "float32": work / "o2t" / "model_float32.tflite"}
        if proc.returncode != 0 or not all(p.is_file() for p in found.values()):
            tail = (proc.stdout + proc.stderr)[-2000:]
            raise RuntimeError(f"onnx2tf failed (exit {proc.returncode}); log in {out_dir / 'onnx2tf.log'}:\n{tail}")
        result = {}
        for key, path in found.items():
            result[key] = out_dir / f"model_{key}.tflite"
            shutil.copy(path, result[key])
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tflite_ops(path: str | Path) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    return sorted({op["op_name"] for op in interp._get_ops_details()})


def run_tflite(path: str | Path, images: np.ndarray, threads: int = 1, desc: str | None = None,
               ) -> tuple[np.ndarray, dict]:
    """Outputs for grey images [N,H,W] (real values: raw pixels, or whatever the model expects) through
    ai-edge-litert, quantising in and out per the model's own parameters; NHWC or NCHW input. Returns the
    float outputs and the I/O description."""
    from ai_edge_litert.interpreter import Interpreter
    from tqdm import tqdm

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    shape = [int(v) for v in inp["shape"]]
    nchw = len(shape) == 4 and shape[1] == 1 and shape[3] != 1
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    logits = np.empty((len(images), int(np.prod(out["shape"]))), dtype=np.float32)
    for i, im in enumerate(tqdm(images, desc=desc, disable=None if desc else True)):
        x = im.astype(np.float32)[None, None] if nchw else im.astype(np.float32)[None, ..., None]
        if inp["dtype"] != np.float32:
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / in_scale + in_zero), info.min, info.max)
        interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interp.invoke()
        y = interp.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] != np.float32:
            y = (y - out_zero) * out_scale
        logits[i] = y.reshape(-1)
    io = {"input": {"dtype": np.dtype(inp["dtype"]).name, "shape": shape,
                    "scale": float(in_scale), "zero_point": int(in_zero)},
          "output": {"dtype": np.dtype(out["dtype"]).name, "scale": float(out_scale), "zero_point": int(out_zero)}}
    return logits, io


def run_onnx(path: str | Path, images: np.ndarray, arithmetic: QdqArithmetic = "reference") -> np.ndarray:
    """Logits for raw-pixel images [N,H,W] on onnxruntime's CPU provider, one thread. An int8 QDQ model runs with
    the reference Q/DQ arithmetic unless ``arithmetic="fused"`` (see :mod:`edgefer.edge.qdq`): gates judge the
    model, not this host's integer kernels."""
    import onnxruntime as ort

    options, _ = session_options(ort, path, threads=1, arithmetic=arithmetic)
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = images.astype(np.float32)[:, None]
    return np.concatenate([sess.run(None, {INPUT_NAME: x[i:i + 1]})[0] for i in range(len(x))])


def check_parity(onnx_path: Path, float_tflite: Path, int8_tflite: Path, test: FaceSet,
                 bounds: ParityBounds) -> dict:
    """Float ONNX vs float TFLite vs int8 TFLite on ``test``; raises ParityError past ``bounds``."""
    ref = run_onnx(onnx_path, test.images)
    flt, _ = run_tflite(float_tflite, test.images)
    q, io = run_tflite(int8_tflite, test.images)
    acc = lambda logits: float((logits.argmax(1) == test.targets).mean())  # noqa: E731
    report = {
        "n": len(test), "split": test.source,
        "onnx_float_acc": acc(ref), "tflite_float_acc": acc(flt), "tflite_int8_acc": acc(q),
        "float_tflite_max_logit_diff": float(np.abs(flt - ref).max()),
        "int8_top1_agreement": float((q.argmax(1) == ref.argmax(1)).mean()),
        "int8_max_logit_diff": float(np.abs(q - ref).max()),
        "bounds": bounds.model_dump(), "io": io,
    }
    report["int8_accuracy_drop"] = report["onnx_float_acc"] - report["tflite_int8_acc"]
    problems = []
    if report["float_tflite_max_logit_diff"] > bounds.max_float_tflite_logit_diff:
        problems.append(f"float TFLite differs from ONNX by {report['float_tflite_max_logit_diff']:.2e} "
                        f"> {bounds.max_float_tflite_logit_diff:.0e}")
    if report["int8_accuracy_drop"] > bounds.max_accuracy_drop:
        problems.append(f"int8 accuracy drop {report['int8_accuracy_drop'] * 100:.2f} points "
                        f"> {bounds.max_accuracy_drop * 100:.2f}")
    if report["int8_top1_agreement"] < bounds.min_top1_agreement:
        problems.append(f"int8 top-1 agreement {report['int8_top1_agreement']:.3f} < {bounds.min_top1_agreement}")
    report["passed"] = not problems
    if problems:
        err = ParityError("parity check failed: " + "; ".join(problems))
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report
