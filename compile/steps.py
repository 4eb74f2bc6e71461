"""The toolchain's steps as plain functions; ``edgefer teacher|distill|prune|quantize|eval`` wrap them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch

from edgefer.compile import distributed, nets, pretrained, teacher
from edgefer.compile.augment import PRESETS
from edgefer.compile.data import YAWN_CROP_IOD, DataSpec, FaceSet, dataset_info, load_dataset
from edgefer.compile.quantize import ParityBounds
from edgefer.compile.train import PREDICT_BATCH, TrainConfig, accuracy, fit, predict_logits
from edgefer.edge.contract import CropSpec

#: What each task's classifier looks at: recorded in the dataset part of the sidecar.
TASK_INPUTS = {
    "expression": "a face box (Haar / BlazeFace) widened by the crop margin, grey, square",
    "eye_state": "one eye, grey, square, centred on the eye keypoint, side 0.55 x the inter-ocular distance, eye "
                 "line level (the scale at which runtime crops best match CEW patches: tools/measure_eye_crop.py)",
    "yawn": f"the mouth, grey, square, centred on the mouth keypoint (BlazeFace; Haar box + edgefer.edge.crop."
            f"keypoints_from_box as the fallback), side {YAWN_CROP_IOD} x the inter-ocular distance, eye line level "
            f"(the scale chosen on val groups: tools/measure_mouth_crop.py)",
}


#: Side of an eye crop in inter-ocular distances at which runtime crops match CEW patches best
#: (tools/measure_eye_crop.py: 912 faces; the match is flat from 0.5 to 0.8).
EYE_CROP_IOD = 0.55


def task_crop(task: str, margin: float) -> CropSpec:
    """How the runtime must cut this task's input, written into the sidecar."""
    if task == "eye_state":
        return CropSpec(reference="eye", size_iod=EYE_CROP_IOD, align="eyes-level", interpolation="linear")
    if task == "yawn":
        return CropSpec(reference="mouth", size_iod=YAWN_CROP_IOD, align="eyes-level", interpolation="linear")
    return CropSpec(margin=margin, square=True, align="none", interpolation="area")


def resolve_task(data: DataSpec, task: str | None = None) -> str:
    """The task a data set trains: given, or read from its format (an eye manifest -> eye_state)."""
    found = dataset_info(data)["task"]
    if task is not None and task != found:
        raise ValueError(f"{data}: holds {found} data, but task {task!r} was asked for")
    return task or found


def _splits(data: DataSpec, size: int | None = None) -> tuple[FaceSet, FaceSet]:
    info = dataset_info(data)
    return load_dataset(data, info["train"], size), load_dataset(data, info["validation"], size)


def _config(cfg: TrainConfig | None, task: str, **defaults) -> TrainConfig:
    """The run's config with the task's augmentation preset filled in when none was chosen."""
    cfg = cfg or TrainConfig(**defaults)
    if cfg.augment is None:
        cfg = cfg.model_copy(update={"augment": PRESETS.get(task, PRESETS["expression"])})
    return cfg


def teacher_probabilities(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Softmax of a trained teacher on ``images``: under torchrun each rank predicts its block of whole
    prediction batches, and the logits are gathered in row order, so the result is byte-identical to one
    process."""
    logits = distributed.map_shards(lambda lo, hi: predict_logits(model, images[lo:hi]), len(images), PREDICT_BATCH)
    return torch.softmax(torch.from_numpy(logits), 1).numpy()


def _stopped(history: dict, out_dir: str | Path) -> dict | None:
    """What a step returns when its training run stopped early on purpose (``stop_after_epoch``)."""
    if "stopped_after_epoch" not in history:
        return None
    return {"stopped_after_epoch": history["stopped_after_epoch"], "epochs": history["config"]["epochs"],
            "run": str(out_dir), "resume": "run the same command without stop_after_epoch"}


def _write_on_rank0(path: Path, text: str) -> None:
    if distributed.context().main:
        path.write_text(text)
    distributed.barrier()


def make_teacher(data: DataSpec, out: str | Path, *, votes: str | Path | None = None,
                 wrap: list[tuple[str, str]] | None = None, train_arch: str | None = None,
                 weights: list[float] | None = None, cfg: TrainConfig | None = None,
                 task: str | None = None, size: int | None = None) -> dict:
    """Build the soft-label file ``out`` (.npz) from any mix of teachers.

    ``votes``: FER+ vote file; ``wrap``: (model path, input convention name in teacher.KNOWN_WRAPS);
    ``train_arch``: train a torch teacher here first ('default' = the task's teacher, nets.TASK_ARCHS).
    ``weights`` in that order (default equal). ``task``: checked against the data; read from it when None.
    ``size``: the trained teacher's input side (default: the data's own); the soft labels are keyed by row, so
    a student trains on them at its own size. A ``pretrained`` arch (compile/pretrained.py) starts from ImageNet.
    """
    task = resolve_task(data, task)
    train, val = _splits(data, size)
    parts: list[np.ndarray] = []
    names: list[str] = []
    report: dict = {}
    if train_arch:
        train_arch = nets.TASK_ARCHS[task]["teacher"] if train_arch == "default" else train_arch
        cfg = _config(cfg, task, epochs=30)
        torch.manual_seed(cfg.seed)
        model = pretrained.build_pretrained(train_arch, len(train.labels), train.images.shape[1]) \
            if pretrained.is_pretrained(train_arch) else nets.build(train_arch, len(train.labels))
        run_dir = Path(out).with_suffix("")
        history = fit(model, train, val, cfg, run_dir, tag=f"teacher-{train_arch}")
        if (stopped := _stopped(history, run_dir)) is not None:
            return stopped
        parts.append(teacher_probabilities(model, train.images))
        names.append(f"trained:{train_arch}")
        macs, params = nets.count_macs(model, train.images.shape[1])
        report[names[-1]] = {"val_acc": accuracy(model, val), "checkpoint": str(run_dir / "best.pt"),
                             "macs": macs, "params": params, "config": cfg.model_dump()}
    if votes:
        parts.append(teacher.ferplus_teacher(votes, train))
        names.append(f"ferplus:{Path(votes).name}")
    threads = cfg.threads if cfg else TrainConfig().threads
    for model_path, convention in wrap or []:
        if convention not in teacher.KNOWN_WRAPS:
            raise ValueError(f"unknown input convention {convention!r}; one of {', '.join(teacher.KNOWN_WRAPS)}")
        parts.append(teacher.wrapped_teacher(model_path, train, teacher.KNOWN_WRAPS[convention], threads))
        names.append(f"wrapped:{Path(model_path).name}")
        val_probs = teacher.wrapped_teacher(model_path, val, teacher.KNOWN_WRAPS[convention], threads)
        report[names[-1]] = {"val_acc": teacher.teacher_agreement(val_probs, val)}
    if not parts:
        raise ValueError("no teacher given: pass votes, wrap or train_arch")
    probs = teacher.combine(parts, weights)
    for name, part in zip(names, parts, strict=True):
        report.setdefault(name, {})["train_agreement"] = teacher.teacher_agreement(part, train)
    description = {"teachers": names, "weights": weights or [1.0] * len(parts), "report": report,
                   "train_agreement": teacher.teacher_agreement(probs, train),
                   "data": [str(p) for p in data] if isinstance(data, list) else str(data), "task": task}
    if distributed.context().main:
        teacher.save_soft_labels(out, probs, train, description)
    distributed.barrier()
    return description


def distill(data: DataSpec, out_dir: str | Path, *, arch: str | None = None,
            soft_labels: str | Path | None = None, cfg: TrainConfig | None = None, task: str | None = None) -> dict:
    """Train a student; with ``soft_labels`` it is Hinton distillation, without it the same recipe on hard labels.

    ``arch`` None: the task's student ('student' for expression, 'eye-student' for eye_state)."""
    task = resolve_task(data, task)
    arch = arch or nets.TASK_ARCHS[task]["student"]
    train, val = _splits(data)
    cfg = _config(cfg, task)
    soft, description = (None, None)
    if soft_labels:
        soft, description = teacher.load_soft_labels(soft_labels, train)
    else:
        cfg = cfg.model_copy(update={"alpha": 0.0})
    torch.manual_seed(cfg.seed)
    model = nets.build(arch, len(train.labels))
    history = fit(model, train, val, cfg, out_dir, soft_targets=soft, tag=f"distill-{arch}")
    if (stopped := _stopped(history, out_dir)) is not None:
        return stopped
    macs, params = nets.count_macs(model, train.images.shape[1])
    summary = {"arch": arch, "task": task, "input_size": int(train.images.shape[1]), "val_acc": history["best_val_acc"],
               "macs": macs, "params": params, "teacher": description, "config": cfg.model_dump()}
    _write_on_rank0(Path(out_dir, "summary.json"), json.dumps(summary, indent=1))
    return summary


def prune(data: DataSpec, model_path: str | Path, out_dir: str | Path, *, ratio: float = 0.4,
          soft_labels: str | Path | None = None, cfg: TrainConfig | None = None, task: str | None = None) -> dict:
    """Structured pruning of a trained model, then fine-tuning (with the teacher when one is given)."""
    from edgefer.compile.prune import prune_channels

    task = resolve_task(data, task)
    train, val = _splits(data)
    model = torch.load(model_path, weights_only=False)
    acc_before = accuracy(model, val)
    stats = prune_channels(model, ratio, size=train.images.shape[1])
    acc_pruned = accuracy(model, val)
    cfg = _config(cfg, task, epochs=10, lr=0.02)
    soft, description = teacher.load_soft_labels(soft_labels, train) if soft_labels else (None, None)
    if soft is None:
        cfg = cfg.model_copy(update={"alpha": 0.0})
    history = fit(model, train, val, cfg, out_dir, soft_targets=soft, tag=f"prune-{ratio}")
    if (stopped := _stopped(history, out_dir)) is not None:
        return stopped
    summary = {**stats, "val_acc_before": acc_before, "val_acc_after_prune": acc_pruned,
               "val_acc_after_finetune": history["best_val_acc"], "source": str(model_path),
               "teacher": description, "config": cfg.model_dump()}
    _write_on_rank0(Path(out_dir, "summary.json"), json.dumps(summary, indent=1))
    return summary


def balance(data: DataSpec, model_path: str | Path, out_dir: str | Path, *, tau: float | None = None,
            task: str | None = None) -> dict:
    """Logit adjustment (edgefer.compile.balance) folded into the classifier: ``out_dir/best.pt`` and ``summary.json``.

    ``tau`` None: chosen on the validation split by the declared rule (mean of accuracy and UAR)."""
    from edgefer.compile import balance as bal

    resolve_task(data, task)
    train, val = _splits(data)
    model = torch.load(model_path, weights_only=False)
    prior = bal.log_prior(train.targets, len(train.labels))
    grid = bal.TAU_GRID if tau is None else tuple(sorted({0.0, float(tau)}))
    rows = bal.tau_table(predict_logits(model, val.images), val.targets, val.labels, prior, grid)
    chosen = bal.choose_tau(rows) if tau is None else next(r for r in rows if r["tau"] == float(tau))
    before = next(r for r in rows if r["tau"] == 0.0)
    bal.fold_into_classifier(model, -chosen["tau"] * prior)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model, out_dir / "best.pt")
    summary = {"step": "logit-adjustment", "source": str(model_path), "tau": chosen["tau"],
               "chosen_by": "given" if tau is not None else bal.SELECTION_RULE, "validation": val.source,
               "log_prior": [float(v) for v in prior], "labels": list(train.labels),
               "val_before": {k: before[k] for k in ("accuracy", "uar", "score")},
               "val_after": {k: chosen[k] for k in ("accuracy", "uar", "score")},
               "val_acc": chosen["accuracy"], "table": rows}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def provenance_of(model_path: str | Path) -> dict:
    """The recipe behind a .pt: follows the ``summary.json`` of its run folder back through its sources
    (balance -> prune -> distill), collecting each step and the teacher that was used."""
    steps_seen: list[dict] = []
    teacher_desc = None
    path: Path | None = Path(model_path)
    while path is not None and (path.parent / "summary.json").is_file() and len(steps_seen) < 10:
        summary = json.loads((path.parent / "summary.json").read_text())
        teacher_desc = teacher_desc or summary.get("teacher")
        steps_seen.append({k: v for k, v in summary.items() if k not in ("teacher", "table")}
                          | {"run": str(path.parent)})
        path = Path(summary["source"]) if summary.get("source") else None
    return {"teacher": teacher_desc, "recipe": {"steps": list(reversed(steps_seen))}}


def _yawn_metrics(data: str | Path, test: FaceSet, int8_report: dict, float_logits: np.ndarray,
                  int8_tflite: Path) -> dict:
    """Yawn extras for the sidecar: per-class recall (float and int8) on the unseen session groups, and the
    int8 model on the source's own test folder, flagged as optimistic (its frames share clips with training)."""
    from edgefer.compile import evaluate
    from edgefer.compile.data import YAWN_SOURCE_TEST
    from edgefer.compile.quantize import run_tflite

    float_report = evaluate.classification_report(test.targets, float_logits, test.labels)
    recall = lambda r: {k: v["recall"] for k, v in r["per_class"].items()}  # noqa: E731
    out = {"groups": len(set(test.groups)), "recall": recall(int8_report),
           "float": {"accuracy": float_report["accuracy"], "uar": float_report["uar"], "recall": recall(float_report)}}
    leaky = load_dataset(data, YAWN_SOURCE_TEST)
    if len(leaky):
        q = evaluate.classification_report(leaky.targets, run_tflite(int8_tflite, leaky.images)[0], leaky.labels)
        out["source_test_folder"] = {
            "split": YAWN_SOURCE_TEST, "n": len(leaky), "accuracy": q["accuracy"], "uar": q["uar"],
            "recall": recall(q), "caveat": "optimistic: the source's test frames are neighbours of training frames "
                                           "from the same clips (213 of 215 in YawDD); the headline is the unseen "
                                           "session groups"}
    return out


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in ("torch", "torch-pruning", "onnx", "onnxruntime", "onnx2tf", "tensorflow-cpu", "tensorflow",
                "ai-edge-litert", "numpy", "opencv-python-headless", "edgefer"):
        with contextlib.suppress(PackageNotFoundError):
            found[pkg] = version(pkg)
    return found


def quantize(data: DataSpec, model_path: str | Path, name: str, models_dir: str | Path = "models", *,
             test_split: str | None = None, bounds: ParityBounds | None = None, provenance: dict | None = None,
             reports_dir: str | Path = "reports", crop_margin: float = 0.0, task: str | None = None) -> dict:
    """Export ONNX, convert to full-int8 TFLite, gate on parity, evaluate, and ship model + sidecar.

    ``test_split`` None: the data set's test split (PrivateTest, or test). ``task`` None: read from the data.
    Data with several images per face (eye patches) also get per-eye and per-face accuracy, and eye-state
    models a robustness table (tone, blur, NIR-like and crop-jitter copies of the test faces)."""
    import datetime
    import shutil

    from edgefer.compile import evaluate
    from edgefer.compile.quantize import (
        calibration_images,
        check_parity,
        convert_int8,
        export_onnx,
        run_tflite,
        tflite_ops,
    )
    from edgefer.edge.contract import InputSpec, ModelContract, OutputSpec, sha256_of, write_contract

    task = resolve_task(data, task)
    info = dataset_info(data)
    test_split = test_split or info["default_test_split"]
    bounds = bounds or ParityBounds()
    provenance = provenance if provenance is not None else provenance_of(model_path)
    train = load_dataset(data, info["train"])
    test = load_dataset(data, test_split)
    model = torch.load(model_path, weights_only=False)
    model.eval()
    size = train.images.shape[1]
    models_dir, reports = Path(models_dir), Path(reports_dir) / name
    reports.mkdir(parents=True, exist_ok=True)
    models_dir.mkdir(parents=True, exist_ok=True)

    onnx_path = export_onnx(model, reports / f"{name}.onnx", size)
    tflites = convert_int8(onnx_path, calibration_images(train), reports / "tflite")
    ops = tflite_ops(tflites["int8"])
    if any(op.startswith("FLEX") or op == "CUSTOM" for op in ops):
        raise RuntimeError(f"int8 model contains ops a plain TFLite runtime cannot run: {ops}")
    parity = check_parity(onnx_path, tflites["float32"], tflites["int8"], test, bounds)
    logits, io = run_tflite(tflites["int8"], test.images)
    report = evaluate.classification_report(test.targets, logits, test.labels)
    evaluate.write_json(report, reports / "eval_int8.json")
    evaluate.plot_confusion(report, reports / "confusion_int8.png",
                            f"{name} int8 on {test.source}: acc {report['accuracy']:.3f}, UAR {report['uar']:.3f}")
    metrics = {"test": {"split": test.source if task == "expression" else f"{test.source}:{test_split}",
                        "accuracy": report["accuracy"], "uar": report["uar"], "macro_f1": report["macro_f1"]},
               "parity": parity, "ops": ops}
    if task == "yawn":
        metrics["test"] |= _yawn_metrics(data, test, report, predict_logits(model, test.images), tflites["int8"])
    elif len(test.groups):
        float_logits = predict_logits(model, test.images)
        metrics["test"]["float"] = evaluate.grouped_accuracy(test, float_logits)
        metrics["test"]["int8"] = evaluate.grouped_accuracy(test, logits)
    if task == "eye_state":
        from edgefer.compile.robustness import robustness_report

        metrics["robustness"] = robustness_report(
            test, {"float": lambda x: predict_logits(model, x), "int8": lambda x: run_tflite(tflites["int8"], x)[0]})
    evaluate.write_json(metrics, reports / "metrics.json")
    histories = [json.loads(Path(s["run"], "history.json").read_text())
                 for s in provenance.get("recipe", {}).get("steps", []) if Path(s["run"], "history.json").is_file()]
    if histories:
        evaluate.plot_history(histories, reports / "training_curves.png")

    tflite_out = models_dir / f"{name}.tflite"
    shutil.copy(tflites["int8"], tflite_out)
    shutil.copy(onnx_path, models_dir / f"{name}.onnx")
    macs, params = nets.count_macs(model, size)
    dataset = {k: v for k, v in info.items() if k not in ("task", "default_test_split")} | {"test": test_split}
    dataset |= {"n": {"train": len(train), "test": len(test)}, "input": TASK_INPUTS.get(task, "")}
    if task == "yawn":
        from edgefer.compile.data import read_yawn_frames_cached, yawn_csv_path

        frames = read_yawn_frames_cached(yawn_csv_path(data))
        dataset["n"]["test_groups"] = len(set(test.groups))
        dataset["n"]["train_groups"] = len(set(train.groups))
        dataset["faces_found"] = frames.detection_counts()
        dataset["input_size"] = size
    elif len(test.groups):
        dataset["n"]["test_faces"] = len(set(test.groups))
    contract = ModelContract(
        name=name, task=task, file=tflite_out.name, format="tflite", target="cpu",
        sha256=sha256_of(tflite_out), bytes=tflite_out.stat().st_size, labels=list(test.labels),
        input=InputSpec(height=size, width=size, channels=1, colour="grey", layout="NHWC",
                        dtype=io["input"]["dtype"], scale=io["input"]["scale"], zero_point=io["input"]["zero_point"]),
        output=OutputSpec(dtype=io["output"]["dtype"], scale=io["output"]["scale"],
                          zero_point=io["output"]["zero_point"], kind="logits"),
        crop=task_crop(task, crop_margin),
        threads=1, params=params, macs=macs,
        metrics=metrics, dataset=dataset,
        teacher=provenance.get("teacher"), recipe=provenance.get("recipe", {}),
        tools=tool_versions(), created=datetime.date.today().isoformat(),
    )
    write_contract(contract, tflite_out.with_suffix(".json"))
    return {"model": str(tflite_out), "bytes": contract.bytes, "parity": parity, "eval": report, "metrics": metrics}
