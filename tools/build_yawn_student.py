"""The recipe that produces models/yawn.{tflite,json,onnx}: teacher -> distil -> prune -> int8, on YawDD frames.

    PATH=.venv/bin:$PATH python tools/build_yawn_student.py ../shared/data/yawn [--runs runs/yawn]

The yawn model looks at the mouth only: the runtime's face detector (BlazeFace, Haar as the fallback) finds the
mouth keypoint in each 320x240 frame and the runtime's crop cuts a square of YAWN_CROP_IOD x the inter-ocular
distance around it, eye line level, 32x32 (compile/data.py; the scale was chosen on val groups by
tools/measure_mouth_crop.py). The split is by session_group (hash, 70/15/15; about one driver session per group):
val chooses the epochs, test (groups never seen) only measures. The source's own test folder (yawn_test) shares
clips with the training frames and is reported separately as optimistic.

Every training step checkpoints each epoch and every finished step is skipped: run it again to resume after a
cut-off. One torch thread throughout (a few minutes on this 2-core CPU). After shipping it writes
reports/yawn/summary.json: accuracy and per-class recall on unseen groups (float and int8; teacher, the
distilled student and a hard-label student of the same budget), the leaky yawn_test figure, the share of frames
with a face by detector, robustness, size, MACs and latency.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from edgefer.compile import recipe  # noqa: E402
from edgefer.compile.data import (  # noqa: E402
    YAWN_SOURCE_TEST,
    YAWN_SPLIT_SALT,
    YAWN_SPLIT_SHARES,
    FaceSet,
    dataset_info,
    face_split,
    load_dataset,
    read_yawn_frames_cached,
    yawn_csv_path,
)
from edgefer.compile.evaluate import classification_report, write_json  # noqa: E402
from edgefer.compile.quantize import run_tflite  # noqa: E402
from edgefer.compile.recipe import latency_ms  # noqa: E402
from edgefer.compile.robustness import robustness_report  # noqa: E402
from edgefer.compile.train import TrainConfig, predict_logits  # noqa: E402

NAME = "yawn"
THREADS = 1
TEACHER = TrainConfig(epochs=60, lr=0.05, batch_size=64, alpha=0.0, threads=THREADS)
STUDENT = TrainConfig(epochs=100, lr=0.05, batch_size=64, alpha=0.5, temperature=3.0, threads=THREADS)
PRUNE_RATIO = 0.25
FINETUNE = TrainConfig(epochs=30, lr=0.02, batch_size=64, alpha=0.5, temperature=3.0, threads=THREADS)
RECIPE = recipe.Recipe(NAME, "yawn-teacher", "yawn-student", TEACHER, STUDENT, PRUNE_RATIO, FINETUNE)


def figures(logits: np.ndarray, data: FaceSet) -> dict:
    r = classification_report(data.targets, logits, data.labels)
    return {"n": r["n"], "accuracy": r["accuracy"], "uar": r["uar"],
            "recall": {k: v["recall"] for k, v in r["per_class"].items()}}


def main() -> int:
    args, data, runs, shipped, paths = recipe.main_args(
        RECIPE, __doc__.splitlines()[0], "yawn folder holding frames.csv", "runs/yawn", THREADS)

    # 5. The figures for the report.
    info = dataset_info(data)
    train, val, test = (load_dataset(data, info[k]) for k in ("train", "validation", "test"))
    leaky = load_dataset(data, YAWN_SOURCE_TEST)
    float_figures = {}
    for tag, path in paths.items():
        model = torch.load(path, weights_only=False)
        float_figures[tag] = {split: figures(predict_logits(model, s.images), s)
                              for split, s in (("val", val), ("test_unseen_groups", test), (YAWN_SOURCE_TEST, leaky))}
    tflite = Path(args.models) / f"{NAME}.tflite"
    contract = json.loads(tflite.with_suffix(".json").read_text())
    model = torch.load(paths["pruned"], weights_only=False)
    plain = FaceSet(test.images, test.targets, test.labels, test.source)  # groups mix both labels: per frame only
    frames = read_yawn_frames_cached(yawn_csv_path(data))
    row_split = face_split(frames.groups, YAWN_SPLIT_SHARES, YAWN_SPLIT_SALT)  # every csv row, face or not
    summary = {
        "model": str(tflite), "bytes": shipped["bytes"], "params": contract["params"], "macs": contract["macs"],
        "crop": contract["crop"], "input_size": contract["input"]["height"],
        "int8_test_unseen_groups": contract["metrics"]["test"], "parity": shipped["parity"],
        "int8_accuracy_drop": shipped["parity"]["int8_accuracy_drop"],
        "int8_source_test_folder": contract["metrics"]["test"].get("source_test_folder"),
        "float_models": float_figures,
        "faces_found": {"all_frames": frames.detection_counts(),
                        **{f"{name}_groups": frames.detection_counts(row_split == name) for name in YAWN_SPLIT_SHARES}},
        "robustness": robustness_report(plain, {"float": lambda x: predict_logits(model, x),
                                                "int8": lambda x: run_tflite(tflite, x)[0]}),
        "latency": latency_ms(tflite, test.images[0]),
        "split": {"frames": {k: len(s) for k, s in (("train", train), ("val", val), ("test", test),
                                                    (YAWN_SOURCE_TEST, leaky))},
                  "groups": {k: len(set(s.groups)) for k, s in (("train", train), ("val", val), ("test", test))},
                  "class_counts": {k: s.class_counts() for k, s in (("train", train), ("val", val), ("test", test))}},
    }
    write_json(summary, Path(args.reports) / NAME / "summary.json")
    print(json.dumps({k: summary[k] for k in ("bytes", "params", "macs", "int8_test_unseen_groups",
                                              "int8_accuracy_drop", "faces_found", "latency")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
