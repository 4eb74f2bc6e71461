"""The jetson target: float ONNX (opset 17, static), an int8 QDQ ONNX, and a script that builds the engine on the board.

Why QDQ and not a calibrator: TensorRT 10+ takes explicitly quantised networks (QuantizeLinear/DequantizeLinear
pairs carry the scales) and TensorRT 11 removes the implicit-calibration path. onnxruntime's static quantisation
writes those pairs from calibration images, and the same ONNX runs on onnxruntime's CPU provider, so the int8
result can be checked here against the int8 TFLite before anything reaches a board. TensorRT only takes
symmetric int8 (zero point 0), so activations are quantised symmetrically. The engine itself is built on the
Jetson by ``trtexec``: engines are tied to the GPU and the TensorRT version, so none is shipped.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.compile.artifacts import TargetError, write_artifact
from edgefer.edge.bench import machine_line
from edgefer.edge.contract import InputSpec, ModelContract, OutputSpec, sidecar_path

OPSET = 17


def check_float_onnx(path: Path) -> dict[str, Any]:
    """Opset 17 and fully static shapes, or a TargetError naming what is wrong."""
    import onnx

    if not path.is_file():
        raise TargetError(f"{path}: the jetson target needs the float ONNX beside the .tflite (edgefer quantize "
                          "writes it)")
    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != OPSET:
        raise TargetError(f"{path}: opset {opset}, the jetson target builds from opset {OPSET} (export with "
                          "dynamo=False, opset_version=17)")
    shapes = {}
    for value in list(model.graph.input) + list(model.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in value.type.tensor_type.shape.dim]
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise TargetError(f"{path}: {value.name} has a dynamic shape {dims}; TensorRT engines here are static")
        shapes[value.name] = dims
    onnx.checker.check_model(model, full_check=True)
    return {"opset": opset, "shapes": shapes, "ops": sorted({n.op_type for n in model.graph.node})}


class _Reader:
    """onnxruntime CalibrationDataReader over raw-pixel images [N,H,W] -> NCHW float32 batches of one."""

    def __init__(self, images: np.ndarray, input_name: str) -> None:
        self._it = iter(images.astype(np.float32)[:, None])
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x[None]}


def float_nodes(model_path: Path) -> list[str]:
    """The nodes left in float: the Mul/Add before the first Conv/Gemm (the in-model input normalisation) and
    the last Gemm/MatMul (the classifier, whose logits a symmetric int8 output would cut to 7 bits)."""
    import onnx

    nodes = onnx.load(str(model_path)).graph.node
    names = []
    for node in nodes:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            break
        if node.op_type in ("Mul", "Add", "Sub", "Div"):
            names.append(node.name)
    classifiers = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
    return names + classifiers[-1:]


def quantize_qdq(float_onnx: Path, calib: np.ndarray, dest: Path) -> dict[str, Any]:
    """Static QDQ int8 for TensorRT: per-channel symmetric weights, symmetric activations (TensorRT takes zero
    point 0 only) calibrated at the 99.999th percentile, and the input normalisation left in float.

    Why those two choices (measured on fer-student, FER2013 PrivateTest, top-1 agreement with the int8 TFLite):
    a symmetric int8 input cannot hold raw 0..255 pixels exactly (the TFLite's scale-1 input can), so the Mul/Add
    normalisation stays float and the first Conv's input is quantised instead (MinMax 97.8 % -> 97.9 %); the
    percentile range then spends the 7 bits a ReLU output keeps under symmetric int8 better (98.0 %). The
    asymmetric ORT default reaches 98.3 % but TensorRT rejects non-zero zero points. The classifier stays float
    too (700 MACs): for the logit-adjusted fer-student of 2026-12-01 a symmetric int8 classifier put the agreement
    at 97.9 % (2,000 calibration images instead of 400: 97.7 %); a float one gave 98.2 %."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort.InferenceSession(str(float_onnx), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory(prefix="qdq-") as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(float_onnx), str(prep))
        excluded = float_nodes(prep)
        quantize_static(str(prep), str(dest), _Reader(calib, input_name), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=excluded,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                       "CalibPercentile": 99.999})
    model = onnx.load(str(dest))
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return {"quantize_linear": counts.get("QuantizeLinear", 0), "dequantize_linear": counts.get("DequantizeLinear", 0),
            "calibration_images": int(len(calib)), "float_nodes": excluded,
            "method": "onnxruntime quantize_static QDQ, percentile 99.999, int8 symmetric activations, "
                      "per-channel symmetric weights, input normalisation and classifier in float"}


BUILD_SCRIPT = r"""#!/bin/sh
# Build the TensorRT engine for {name} on this Jetson (run once; the first-boot unit runs it). An engine is tied
# to the GPU and the TensorRT version, so it is never shipped: it is built here from the int8 QDQ ONNX.
# TensorRT 10 builds an explicitly quantised (QDQ) network with --int8; TensorRT 11 dropped implicit
# quantisation and takes it as a strongly typed network. Override the flags with TRTEXEC_FLAGS.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="$HERE/{onnx}"
ENGINE="$HERE/{engine}"
TRTEXEC=${{TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}}
if [ ! -x "$TRTEXEC" ]; then
    echo "trtexec not found (JetPack ships it as /usr/src/tensorrt/bin/trtexec: sudo apt install tensorrt)" >&2
    exit 1
fi
TRT_VERSION=$(python3 -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null \
    || dpkg-query -W -f='${{Version}}' libnvinfer-bin 2>/dev/null || echo unknown)
MAJOR=${{TRT_VERSION%%.*}}
case "$MAJOR" in
    ''|*[!0-9]*) FLAGS="--int8" ;;
    *) if [ "$MAJOR" -ge 11 ]; then FLAGS="--stronglyTyped"; else FLAGS="--int8"; fi ;;
esac
FLAGS=${{TRTEXEC_FLAGS:-$FLAGS}}
echo "building $ENGINE with TensorRT $TRT_VERSION ($TRTEXEC $FLAGS)"
"$TRTEXEC" --onnx="$MODEL" --saveEngine="$ENGINE.part" $FLAGS --memPoolSize=workspace:256M --skipInference
mv "$ENGINE.part" "$ENGINE"
printf '{{"tensorrt": "%s", "onnx": "%s", "flags": "%s", "built": "%s"}}\n' "$TRT_VERSION" "{onnx}" "$FLAGS" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$ENGINE.json"
echo "engine ready: $ENGINE"
"""


def float_contract(contract: ModelContract, nchw: list[int]) -> dict[str, Any]:
    """The ONNX models take raw 0..255 float pixels NCHW (normalisation is inside the model) and give float logits."""
    _, channels, height, width = nchw
    return {
        "format": "onnx", "target": "jetson", "threads": None,
        "input": InputSpec(height=height, width=width, channels=channels, colour=contract.input.colour,
                           layout="NCHW", dtype="float32", scale=1.0, zero_point=0),
        "output": OutputSpec(dtype="float32", kind=contract.output.kind),
    }


def build_jetson(path: Path, contract: ModelContract, out: Path, data: str | Path, calib_count: int = 400,
                 split: str = "PrivateTest", min_agreement: float = 0.97, max_drop: float = 0.005) -> dict[str, Any]:
    """Float and int8 QDQ ONNX plus the engine script; fails when the int8 ONNX drifts from the float ONNX past the
    bounds the int8 TFLite is held to (``edgefer.compile.quantize.ParityBounds``: top-1 agreement, accuracy drop).

    Until 2026-12-01 the gate was int8 ONNX vs int8 TFLite agreement >= 0.98. That compares two independent
    quantisations, each about 98 % in agreement with the float model, so it asked more of the pair than the
    TFLite gate asks of either, and it failed two logit-adjusted builds (97.9 %, 97.5 %) whose int8 ONNX was as
    accurate as the int8 TFLite. It was changed after that second failure; the pair's agreement is still measured
    and written to the parity report and the sidecar."""
    from edgefer.compile.data import load_dataset
    from edgefer.compile.quantize import calibration_images, run_onnx, run_tflite

    name = contract.name
    float_src = path.with_suffix(".onnx")
    info = check_float_onnx(float_src)
    nchw = next(iter(info["shapes"].values()))
    update = float_contract(contract, nchw)
    float_onnx = write_artifact(float_src, out / f"{name}.onnx", contract, **update)

    train = load_dataset(data, "Training")
    test = load_dataset(data, split)
    calib = calibration_images(train, count=calib_count)
    int8_onnx = out / f"{name}.int8.onnx"
    qdq = quantize_qdq(float_onnx, calib, int8_onnx)

    q_onnx = run_onnx(int8_onnx, test.images, arithmetic="reference")
    f_onnx = run_onnx(float_onnx, test.images)
    q_tflite, _ = run_tflite(path, test.images)
    fused = run_onnx(int8_onnx, test.images, arithmetic="fused")
    parity = {
        "n": len(test), "split": test.source,
        "int8_onnx_arithmetic": "reference Q/DQ (onnxruntime ORT_ENABLE_BASIC, one thread): the gate",
        "int8_onnx_vs_int8_tflite_top1_agreement": float((q_onnx.argmax(1) == q_tflite.argmax(1)).mean()),
        "int8_onnx_vs_float_onnx_top1_agreement": float((q_onnx.argmax(1) == f_onnx.argmax(1)).mean()),
        "int8_onnx_acc": float((q_onnx.argmax(1) == test.targets).mean()),
        "int8_tflite_acc": float((q_tflite.argmax(1) == test.targets).mean()),
        "float_onnx_acc": float((f_onnx.argmax(1) == test.targets).mean()),
        "int8_onnx_vs_int8_tflite_max_logit_diff": float(np.abs(q_onnx - q_tflite).max()),
        "min_agreement": min_agreement, "max_accuracy_drop": max_drop, "qdq": qdq,
    }
    parity["int8_onnx_accuracy_drop"] = parity["float_onnx_acc"] - parity["int8_onnx_acc"]
    # information only: what this host's fused integer kernels make of the same file (not what TensorRT runs)
    parity["host_fused_kernels"] = {
        "machine": machine_line(),
        "int8_onnx_vs_float_onnx_top1_agreement": float((fused.argmax(1) == f_onnx.argmax(1)).mean()),
        "int8_onnx_acc": float((fused.argmax(1) == test.targets).mean()),
    }
    failures = []
    if parity["int8_onnx_vs_float_onnx_top1_agreement"] < min_agreement:
        failures.append(f"the int8 ONNX agrees with the float ONNX on "
                        f"{parity['int8_onnx_vs_float_onnx_top1_agreement']:.4f} of {len(test)} test faces "
                        f"< {min_agreement}")
    if parity["int8_onnx_accuracy_drop"] > max_drop:
        failures.append(f"its accuracy drops {parity['int8_onnx_accuracy_drop'] * 100:.2f} points "
                        f"> {max_drop * 100:.2f}")
    parity["passed"] = not failures
    (out / f"{name}.jetson-parity.json").write_text(json.dumps(parity, indent=1) + "\n")
    if failures:
        raise TargetError(f"jetson parity failed on {test.source}: {'; '.join(failures)} "
                          f"(report: {out / (name + '.jetson-parity.json')})")
    metrics = {**contract.metrics, "jetson_parity": {k: v for k, v in parity.items() if k != "qdq"}}
    write_artifact(int8_onnx, int8_onnx, contract, **update,
                   metrics=metrics, recipe={**contract.recipe, "jetson_qdq": qdq})
    engine = f"{name}.int8.engine"
    script = out / f"{name}.build_engine.sh"
    script.write_text(BUILD_SCRIPT.format(name=name, onnx=int8_onnx.name, engine=engine))
    script.chmod(0o755)
    return {"artifacts": [float_onnx.name, sidecar_path(float_onnx).name, int8_onnx.name,
                          sidecar_path(int8_onnx).name, f"{name}.jetson-parity.json", script.name],
            "onnx": info, "parity": {k: v for k, v in parity.items() if k != "qdq"}, "engine": engine,
            "build_engine": f"sh {script.name}  (on the Jetson; writes {engine})"}
