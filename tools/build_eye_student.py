"""The recipe that produces models/eye-state.{tflite,json,onnx}: teacher -> distil -> prune -> int8, on CEW.

    PATH=.venv/bin:$PATH python tools/build_eye_student.py ../shared/data/eyes/cew [--runs runs/eyes]

Every training step checkpoints each epoch and every finished step is skipped: run it again to resume after a
cut-off. One torch thread throughout (about 15 min on this 2-core CPU). The split is by face (hash of the
identity / source_face, 70/10/20): val chooses the epochs, test only measures. After shipping it writes
reports/eye-state/summary.json: accuracy per patch / eye / face (float and int8, teacher and a hard-label
student of the same budget for comparison), robustness, an intensity-only baseline, size, MACs and latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from compile import steps  # noqa: E402
from compile.data import dataset_info, load_dataset  # noqa: E402
from compile.evaluate import grouped_accuracy, write_json  # noqa: E402
from compile.quantize import run_tflite  # noqa: E402
from compile.robustness import against_the_grain, intensity_baseline  # noqa: E402
from compile.train import TrainConfig, predict_logits  # noqa: E402

NAME = "eye-state"
THREADS = 1
TEACHER = TrainConfig(epochs=60, lr=0.05, batch_size=128, alpha=0.0, threads=THREADS)
STUDENT = TrainConfig(epochs=80, lr=0.05, batch_size=128, alpha=0.5, temperature=3.0, threads=THREADS)
PRUNE_RATIO = 0.3
FINETUNE = TrainConfig(epochs=30, lr=0.02, batch_size=128, alpha=0.5, temperature=3.0, threads=THREADS)


def latency_ms(tflite: Path, image: np.ndarray, runs: int = 2000) -> dict:
    """Median / p90 of one invoke (one eye crop), ai-edge-litert, one thread, after a warm-up."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = (image.astype(np.int16) - 128).astype(np.int8)[None, ..., None]
    for _ in range(200):
        interp.set_tensor(inp["index"], x)
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * len(times))], "runs": runs,
            "threads": 1, "runtime": "ai-edge-litert"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="CEW folder holding manifest.csv")
    ap.add_argument("--runs", default="runs/eyes")
    ap.add_argument("--models", default="models")
    ap.add_argument("--reports", default="reports")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    data, runs = Path(args.data), Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    soft = runs / "teacher" / "soft_labels.npz"

    # 1. Teacher: the bigger eye-teacher net trained here on hard labels (60 epochs), its softmax on the
    #    training patches is the soft-label file.
    if not soft.is_file():
        steps.make_teacher(data, soft, train_arch="eye-teacher", cfg=TEACHER)
    # 2. Student: Hinton distillation (T=3, alpha=0.5), 80 epochs; and the same budget on hard labels alone.
    for out, soft_labels in ((runs / "student-kd", soft), (runs / "student-hard", None)):
        if not (out / "summary.json").is_file():
            steps.distill(data, out, arch="eye-student", soft_labels=soft_labels, cfg=STUDENT)
    # 3. Remove 30 % of every conv's channels, fine-tune 30 epochs with the teacher.
    pruned = runs / f"student-kd-pruned-{PRUNE_RATIO}"
    if not (pruned / "summary.json").is_file():
        steps.prune(data, runs / "student-kd" / "best.pt", pruned, ratio=PRUNE_RATIO, soft_labels=soft,
                    cfg=FINETUNE)
    # 4. ONNX -> full-int8 TFLite (parity gate), metrics, sidecar; ship to models/.
    shipped = steps.quantize(data, pruned / "best.pt", NAME, args.models, reports_dir=args.reports)

    # 5. The figures for the report.
    info = dataset_info(data)
    train, val, test = (load_dataset(data, info[k]) for k in ("train", "validation", "test"))
    float_figures = {}
    for tag, path in (("teacher", runs / "teacher" / "soft_labels" / "best.pt"),
                      ("student-kd", runs / "student-kd" / "best.pt"),
                      ("student-hard", runs / "student-hard" / "best.pt"), ("pruned", pruned / "best.pt")):
        model = torch.load(path, weights_only=False)
        float_figures[tag] = {"val": grouped_accuracy(val, predict_logits(model, val.images)),
                              "test": grouped_accuracy(test, predict_logits(model, test.images))}
    tflite = Path(args.models) / f"{NAME}.tflite"
    contract = json.loads(tflite.with_suffix(".json").read_text())
    summary = {
        "model": str(tflite), "bytes": shipped["bytes"], "params": contract["params"], "macs": contract["macs"],
        "int8_test": contract["metrics"]["test"], "parity": shipped["parity"],
        "float_models": float_figures, "robustness": contract["metrics"]["robustness"],
        "intensity_only_baseline": intensity_baseline(train, test),
        "against_the_grain_int8": against_the_grain(test, run_tflite(tflite, test.images)[0]),
        "latency": latency_ms(tflite, test.images[0]),
        "split": {"train": len(train), "val": len(val), "test": len(test),
                  "faces": {k: len(set(s.groups)) for k, s in (("train", train), ("val", val), ("test", test))}},
    }
    write_json(summary, Path(args.reports) / NAME / "summary.json")
    print(json.dumps({k: summary[k] for k in ("bytes", "params", "macs", "int8_test", "latency",
                                              "intensity_only_baseline", "against_the_grain_int8")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
