"""The recipe that produces models/eye-state.{tflite,json,onnx}: teacher -> distil -> prune -> int8, on CEW.

    PATH=.venv/bin:$PATH python tools/build_eye_student.py ../shared/data/eyes/cew [--runs runs/eyes]

Every training step checkpoints each epoch and every finished step is skipped: run it again to resume after a
cut-off. One torch thread throughout (about 15 min on this 2-core CPU). The split is by face (hash of the
identity / source_face, 70/10/20): val chooses the epochs, test only measures. After shipping it writes
reports/eye-state/summary.json: accuracy per patch / eye / face (float and int8, teacher and a hard-label
student of the same budget for comparison), robustness, an intensity-only baseline, size, MACs and latency.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from edgefer.compile import recipe  # noqa: E402
from edgefer.compile.data import dataset_info, load_dataset  # noqa: E402
from edgefer.compile.evaluate import grouped_accuracy, write_json  # noqa: E402
from edgefer.compile.quantize import run_tflite  # noqa: E402
from edgefer.compile.recipe import latency_ms  # noqa: E402
from edgefer.compile.robustness import against_the_grain, intensity_baseline  # noqa: E402
from edgefer.compile.train import TrainConfig, predict_logits  # noqa: E402

NAME = "eye-state"
THREADS = 1
TEACHER = TrainConfig(epochs=60, lr=0.05, batch_size=128, alpha=0.0, threads=THREADS)
STUDENT = TrainConfig(epochs=80, lr=0.05, batch_size=128, alpha=0.5, temperature=3.0, threads=THREADS)
PRUNE_RATIO = 0.3
FINETUNE = TrainConfig(epochs=30, lr=0.02, batch_size=128, alpha=0.5, temperature=3.0, threads=THREADS)
RECIPE = recipe.Recipe(NAME, "eye-teacher", "eye-student", TEACHER, STUDENT, PRUNE_RATIO, FINETUNE)


def main() -> int:
    args, data, runs, shipped, paths = recipe.main_args(
        RECIPE, __doc__.splitlines()[0], "CEW folder holding manifest.csv", "runs/eyes", THREADS)

    # 5. The figures for the report.
    info = dataset_info(data)
    train, val, test = (load_dataset(data, info[k]) for k in ("train", "validation", "test"))
    float_figures = {}
    for tag, path in paths.items():
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
