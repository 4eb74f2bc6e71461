"""The whole toolchain on a tiny generated data set: teacher -> distil -> prune -> ONNX -> int8 TFLite ->
ai-edge-litert -> parity, then the shipped files through the device runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefer.compile import steps
from edgefer.compile.quantize import ParityBounds, ParityError, check_parity, run_tflite
from edgefer.compile.train import TrainConfig
from edgefer.edge.contract import load_contract
from edgefer.edge.models import Classifier

FAST = dict(epochs=8, lr=0.05, threads=1, batch_size=64)


@pytest.fixture(scope="module")
def built(fer_files, tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    data = fer_files["csv"]
    soft = work / "teacher.npz"
    desc = steps.make_teacher(data, soft, votes=fer_files["votes"])
    student = steps.distill(data, work / "student", arch="micro", soft_labels=soft,
                            cfg=TrainConfig(alpha=0.5, temperature=3.0, **FAST))
    pruned = steps.prune(data, work / "student" / "best.pt", work / "pruned", ratio=0.5, soft_labels=soft,
                         cfg=TrainConfig(**{**FAST, "epochs": 3, "lr": 0.02}))
    balanced = steps.balance(data, work / "pruned" / "best.pt", work / "balanced")
    shipped = steps.quantize(data, work / "balanced" / "best.pt", "tiny", work / "models",
                             reports_dir=work / "reports", crop_margin=0.09,
                             bounds=ParityBounds(max_accuracy_drop=0.05, min_top1_agreement=0.9))
    return {"work": work, "data": data, "teacher": desc, "student": student, "pruned": pruned,
            "balanced": balanced, "shipped": shipped}


def test_teacher_soft_labels_cover_the_training_rows(built):
    desc = built["teacher"]
    assert desc["teachers"] == ["ferplus:fer2013new.csv"]
    # the generated votes put 7 of 10 on the true label, so the crowd teacher agrees with it
    assert desc["train_agreement"] == pytest.approx(1.0)


def test_student_learns_and_pruning_removes_channels(built):
    assert built["student"]["val_acc"] > 0.3  # 7 classes: chance is 0.14
    pruned = built["pruned"]
    assert pruned["macs_after"] < 0.6 * pruned["macs_before"]
    assert pruned["params_after"] < pruned["params_before"]
    assert pruned["val_acc_after_finetune"] > 0.25
    assert pruned["teacher"]["teachers"] == ["ferplus:fer2013new.csv"]  # the fine-tune's teacher is on record


def test_int8_model_is_full_integer_with_raw_pixel_input(built):
    model = built["work"] / "models" / "tiny.tflite"
    contract = load_contract(model)
    assert contract.input.dtype == "int8"
    assert contract.input.scale == pytest.approx(1.0)
    assert contract.input.zero_point == -128
    assert contract.output.dtype == "int8"
    assert contract.bytes == model.stat().st_size < 1_000_000
    assert contract.crop.margin == pytest.approx(0.09)
    assert contract.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert contract.teacher["teachers"] == ["ferplus:fer2013new.csv"]
    assert not any(op.startswith("FLEX") for op in contract.metrics["ops"])
    assert (built["work"] / "models" / "tiny.onnx").is_file()
    runs = [s["run"] for s in contract.recipe["steps"]]
    assert runs == [str(built["work"] / d) for d in ("student", "pruned", "balanced")]
    assert contract.recipe["steps"][-1]["tau"] == built["balanced"]["tau"]
    assert "table" not in contract.recipe["steps"][-1]
    assert (built["work"] / "reports" / "tiny" / "training_curves.png").is_file()


def test_parity_report_and_gate(built, fer_files):
    parity = built["shipped"]["parity"]
    assert parity["passed"]
    assert parity["float_tflite_max_logit_diff"] < 1e-3
    assert parity["int8_top1_agreement"] >= 0.9
    reports = built["work"] / "reports" / "tiny"
    from edgefer.compile.data import load_dataset

    test = load_dataset(fer_files["csv"], "PrivateTest")
    strict = ParityBounds(max_accuracy_drop=0.0, min_top1_agreement=1.0, max_float_tflite_logit_diff=1e-12)
    with pytest.raises(ParityError, match="parity check failed"):
        check_parity(reports / "tiny.onnx", reports / "tflite" / "model_float32.tflite",
                     reports / "tflite" / "model_int8.tflite", test, strict)


def test_runtime_classifier_matches_the_toolchain(built, fer_files):
    from edgefer.compile.data import load_dataset

    test = load_dataset(fer_files["csv"], "PrivateTest")
    model = built["work"] / "models" / "tiny.tflite"
    expected, _ = run_tflite(model, test.images[:20])
    clf = Classifier(model)
    probs = clf.probabilities(test.images[:20])
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(probs.argmax(1), expected.argmax(1))


def test_eval_command_writes_json_and_png(built, fer_files, tmp_path):
    from edgefer.edge.cli import main

    out = tmp_path / "eval"
    assert main(["eval", str(built["work"] / "models" / "tiny.tflite"), str(fer_files["csv"]),
                 "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["n"] == 140
    assert sum(map(sum, report["confusion"])) == 140
    assert report["accuracy"] == pytest.approx(built["shipped"]["eval"]["accuracy"])
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_after_a_cut_off_run_matches_an_uncut_run(fer_files, tmp_path, monkeypatch):
    import torch

    from edgefer.compile import nets
    from edgefer.compile import train as train_mod
    from edgefer.compile.data import load_dataset

    train, val = load_dataset(fer_files["csv"], "Training"), load_dataset(fer_files["csv"], "PublicTest")
    cfg = TrainConfig(**{**FAST, "epochs": 3})
    torch.manual_seed(0)
    uncut_model = nets.build("micro")
    uncut = train_mod.fit(uncut_model, train, val, cfg, tmp_path / "uncut")

    real_accuracy = train_mod.accuracy
    calls = {"n": 0}

    def cut_off_in_epoch_two(model, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the session ends mid-run
        return real_accuracy(model, data)

    monkeypatch.setattr(train_mod, "accuracy", cut_off_in_epoch_two)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_mod.fit(nets.build("micro"), train, val, cfg, tmp_path / "cut")
    monkeypatch.setattr(train_mod, "accuracy", real_accuracy)
    torch.manual_seed(123)  # whatever the global RNG holds now, the checkpoint restores the run's state
    resumed_model = nets.build("micro")
    resumed = train_mod.fit(resumed_model, train, val, cfg, tmp_path / "cut")

    assert "resumed after epoch 1/3" in (tmp_path / "cut" / "train.log").read_text()
    assert [e["val_acc"] for e in resumed["epochs"]] == [e["val_acc"] for e in uncut["epochs"]]
    for a, b in zip(uncut_model.state_dict().values(), resumed_model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_a_run_resumes_with_another_thread_count_but_not_another_recipe():
    from edgefer.compile.train import _same_run

    saved = TrainConfig(**{**FAST, "threads": 1}).model_dump()
    assert _same_run(saved, TrainConfig(**{**FAST, "threads": 2}).model_dump())
    assert not _same_run(saved, TrainConfig(**{**FAST, "threads": 1, "lr": 0.2}).model_dump())


def test_wrapped_and_trained_teachers_combine(built, fer_files, tmp_path):
    """A brought model (our own int8 TFLite, raw-pixel convention) and a net trained here, mixed 1:1."""
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    desc = steps.make_teacher(fer_files["csv"], tmp_path / "mix.npz", train_arch="micro",
                              wrap=[(str(built["work"] / "models" / "tiny.tflite"), "raw48")], cfg=cfg)
    assert desc["teachers"] == ["trained:micro", "wrapped:tiny.tflite"]
    from edgefer.compile.data import load_dataset
    from edgefer.compile.teacher import load_soft_labels

    probs, again = load_soft_labels(tmp_path / "mix.npz", load_dataset(fer_files["csv"], "Training"))
    assert probs.shape == (700, 7) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert again == desc
    assert desc["report"]["wrapped:tiny.tflite"]["val_acc"] == pytest.approx(
        built["pruned"]["val_acc_after_finetune"], abs=0.05)


def test_cli_augment_presets_match_the_toolchain_and_reach_the_config():
    import argparse

    from edgefer.compile.augment import PRESETS
    from edgefer.compile.cli import AUGMENT_PRESETS, _train_config

    assert set(AUGMENT_PRESETS) == set(PRESETS)
    cfg = _train_config(argparse.Namespace(augment="expression-car", epochs=2))
    assert cfg.augment == PRESETS["expression-car"] and cfg.augment.nir > 0 and cfg.epochs == 2
    assert _train_config(argparse.Namespace(augment=None)).augment is None  # the task's preset, filled in later
