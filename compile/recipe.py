"""The student recipe both small models share: teacher -> distil (and a hard-label baseline) -> prune -> int8.

Each step checkpoints every epoch and a finished step is skipped, so running the recipe again resumes after a
cut-off. The build scripts in ``tools/`` hold each model's settings and report its own figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.compile import steps
from edgefer.compile.train import TrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str  # shipped model name: models/NAME.tflite
    teacher_arch: str
    student_arch: str
    teacher: TrainConfig  # the teacher trained here on hard labels
    student: TrainConfig  # distillation (and the hard-label baseline with the same budget)
    prune_ratio: float
    finetune: TrainConfig  # after pruning, with the teacher


def run_paths(runs: Path, recipe: Recipe) -> dict[str, Path]:
    """Where each step's model lands (best.pt), by tag: teacher, student-kd, student-hard, pruned."""
    return {"teacher": runs / "teacher" / "soft_labels" / "best.pt",
            "student-kd": runs / "student-kd" / "best.pt",
            "student-hard": runs / "student-hard" / "best.pt",
            "pruned": runs / f"student-kd-pruned-{recipe.prune_ratio}" / "best.pt"}


def build(recipe: Recipe, data: Path, runs: Path, models_dir: str | Path, reports_dir: str | Path) -> dict:
    """Steps 1-4; returns what :func:`edgefer.compile.steps.quantize` shipped."""
    runs.mkdir(parents=True, exist_ok=True)
    soft = runs / "teacher" / "soft_labels.npz"
    paths = run_paths(runs, recipe)
    # 1. The teacher, trained here; its softmax on the training images is the soft-label file.
    if not soft.is_file():
        steps.make_teacher(data, soft, train_arch=recipe.teacher_arch, cfg=recipe.teacher)
    # 2. The student by Hinton distillation, and the same budget on hard labels alone for comparison.
    for tag, soft_labels in (("student-kd", soft), ("student-hard", None)):
        out = paths[tag].parent
        if not (out / "summary.json").is_file():
            steps.distill(data, out, arch=recipe.student_arch, soft_labels=soft_labels, cfg=recipe.student)
    # 3. Structured channel pruning, fine-tuned with the teacher.
    pruned = paths["pruned"].parent
    if not (pruned / "summary.json").is_file():
        steps.prune(data, paths["student-kd"], pruned, ratio=recipe.prune_ratio, soft_labels=soft,
                    cfg=recipe.finetune)
    # 4. ONNX -> full-int8 TFLite behind the parity gate, metrics, sidecar; ship.
    return steps.quantize(data, paths["pruned"], recipe.name, models_dir, reports_dir=reports_dir)


def main_args(recipe: Recipe, description: str, data_help: str, default_runs: str, threads: int):
    """The build scripts' shared command line and steps 1-4: (args, data, runs, shipped, paths by tag)."""
    import torch

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("data", help=data_help)
    ap.add_argument("--runs", default=default_runs)
    ap.add_argument("--models", default="models")
    ap.add_argument("--reports", default="reports")
    args = ap.parse_args()
    torch.set_num_threads(threads)
    data, runs = Path(args.data), Path(args.runs)
    shipped = build(recipe, data, runs, args.models, args.reports)
    return args, data, runs, shipped, run_paths(runs, recipe)


def latency_ms(tflite: Path, image: np.ndarray, runs: int = 2000) -> dict:
    """Median / p90 of one invoke (one crop), ai-edge-litert, one thread, after a warm-up."""
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
