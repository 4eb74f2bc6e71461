"""QDQ settings for the jetson target side by side: top-1 agreement of the int8 ONNX with the int8 TFLite and
with the float ONNX, and its accuracy, on one split (choose settings on the validation split).

    python tools/jetson_qdq_sweep.py fer2013.csv.gz [--split PublicTest] [--model fer-student]

Each row re-runs edgefer.compile.jetson's quantisation (symmetric int8, per-channel weights, input normalisation and
classifier in float) with another calibration method, percentile or calibration image count.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgefer.compile.data import load_dataset
from edgefer.compile.jetson import _Reader, float_nodes
from edgefer.compile.quantize import calibration_images, run_onnx, run_tflite
from edgefer.edge.models import resolve

#: (label, method, extra options, calibration images); the first row is edgefer.compile.jetson's setting.
SETTINGS = [
    ("percentile 99.999, 400", CalibrationMethod.Percentile, {"CalibPercentile": 99.999}, 400),
    ("percentile 99.99, 400", CalibrationMethod.Percentile, {"CalibPercentile": 99.99}, 400),
    ("percentile 99.9999, 400", CalibrationMethod.Percentile, {"CalibPercentile": 99.9999}, 400),
    ("minmax, 400", CalibrationMethod.MinMax, {}, 400),
    ("entropy, 400", CalibrationMethod.Entropy, {}, 400),
    ("percentile 99.999, 1000", CalibrationMethod.Percentile, {"CalibPercentile": 99.999}, 1000),
    ("percentile 99.99, 1000", CalibrationMethod.Percentile, {"CalibPercentile": 99.99}, 1000),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--model", default="fer-student", help="shipped name or .tflite with its .onnx beside it")
    args = ap.parse_args()
    tflite = Path(resolve(args.model))
    float_onnx = tflite.with_suffix(".onnx")
    train, test = load_dataset(args.data, "Training"), load_dataset(args.data, args.split)
    q_tflite, _ = run_tflite(tflite, test.images)
    f_onnx = run_onnx(float_onnx, test.images)
    name = ort.InferenceSession(str(float_onnx), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    print(f"{test.source}, n={len(test)}; int8 TFLite vs float ONNX: "
          f"{(q_tflite.argmax(1) == f_onnx.argmax(1)).mean():.4f}")
    print(f"{'setting':26} {'vs int8 TFLite':>15} {'vs float':>9} {'accuracy':>9}")
    for label, method, extra, count in SETTINGS:
        with tempfile.TemporaryDirectory(prefix="qdq-sweep-") as tmp:
            prep, dest = Path(tmp) / "prep.onnx", Path(tmp) / "q.onnx"
            quant_pre_process(str(float_onnx), str(prep))
            quantize_static(str(prep), str(dest), _Reader(calibration_images(train, count=count), name),
                            quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, per_channel=True, calibrate_method=method,
                            nodes_to_exclude=float_nodes(prep),
                            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, **extra})
            q = run_onnx(dest, test.images)
        print(f"{label:26} {(q.argmax(1) == q_tflite.argmax(1)).mean():15.4f} "
              f"{(q.argmax(1) == f_onnx.argmax(1)).mean():9.4f} {(q.argmax(1) == test.targets).mean():9.4f}")


if __name__ == "__main__":
    main()
