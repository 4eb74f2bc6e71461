"""The eye-state task: the CEW-style manifest reader, the face-grouped split, the NIR augmentation, grouped
metrics, and the whole toolchain (teacher -> distil -> prune -> int8 -> parity) on a generated eye folder."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from fixtures import write_eye_folder

from edgefer.compile import steps
from edgefer.compile.augment import PRESETS, AugmentConfig, augment_batch, gaussian_blur
from edgefer.compile.data import (
    EYE_LABELS,
    DataError,
    dataset_info,
    face_split,
    load_dataset,
    read_eye_manifest,
)
from edgefer.compile.evaluate import grouped_accuracy
from edgefer.compile.quantize import ParityBounds, run_tflite
from edgefer.compile.train import TrainConfig
from edgefer.edge.contract import load_contract

FAST = dict(lr=0.05, threads=1, batch_size=32)


def _rewrite(root, rows):
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "eye", "source_face", "identity_if_known"])
        w.writerows(rows)


def test_reads_manifest_labels_sides_and_groups(tmp_path):
    rows = write_eye_folder(tmp_path, 6)
    eyes = read_eye_manifest(tmp_path / "manifest.csv")
    assert eyes.images.shape == (12, 24, 24) and eyes.images.dtype == np.uint8
    assert eyes.labels == EYE_LABELS == ("closed", "open")
    assert [EYE_LABELS[t] for t in eyes.targets] == [r[1] for r in rows]
    assert list(eyes.sides) == ["left", "right"] * 6
    # the identity is the group where the manifest knows it, else the source face
    assert eyes.groups[0] == "face:closed_0000/face1" and eyes.groups[6] == "id:Person_3"
    assert list(eyes.rows) == list(range(12))
    # the folder and the manifest path both load, and say what task they hold
    assert dataset_info(tmp_path)["task"] == "eye_state" == dataset_info(tmp_path / "manifest.csv")["task"]


def test_split_keeps_every_face_whole_and_is_order_independent(eye_folder, tmp_path):
    parts = {s: load_dataset(eye_folder, s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 320
    faces = {s: set(p.groups) for s, p in parts.items()}
    assert not faces["train"] & faces["test"] and not faces["train"] & faces["val"] and not faces["val"] & faces["test"]
    for part in parts.values():  # both eyes of every face sit in the same split
        _, counts = np.unique(part.groups, return_counts=True)
        assert (counts == 2).all()
    assert 0.55 < len(parts["train"]) / 320 < 0.85 and len(parts["test"]) > 0 and len(parts["val"]) > 0
    # FER-style split names map onto train/val/test
    assert np.array_equal(load_dataset(eye_folder, "PrivateTest").rows, parts["test"].rows)
    # the split depends on the face alone: shuffled rows give the same faces per split
    copy = tmp_path / "copy"
    shutil.copytree(eye_folder, copy)
    with open(copy / "manifest.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    np.random.default_rng(1).shuffle(rows)
    _rewrite(copy, rows)
    assert set(load_dataset(copy, "test").groups) == faces["test"]
    assert list(face_split(np.array(["a", "b", "a"], dtype=object))[[0, 2]]) == [face_split(np.array(["a"]))[0]] * 2


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r[2].__setitem__(1, "half-open"), r"manifest\.csv:4: label 'half-open' is not one of closed, open"),
    (lambda r: r[2].__setitem__(2, "middle"), r"manifest\.csv:4: eye 'middle' is not left or right"),
    (lambda r: r.__setitem__(2, r[2][:2]), r"manifest\.csv:4: expected at least 4 fields"),
    (lambda r: r[2].__setitem__(0, "openLeftEyes/missing.jpg"), r"manifest\.csv:4: .*missing\.jpg: no such file"),
    (lambda r: r[3].__setitem__(0, r[0][0]), r"manifest\.csv:5: .* is listed twice \(first on line 2\)"),
    (lambda r: r[3].__setitem__(1, "closed"),
     r"manifest\.csv:5: face open_0001/face1 is closed here but open on line 4"),
])
def test_bad_manifest_row_names_file_and_line(tmp_path, edit, message):
    rows = write_eye_folder(tmp_path, 3)
    edit(rows)
    _rewrite(tmp_path, rows)
    with pytest.raises(DataError, match=message):
        read_eye_manifest(tmp_path / "manifest.csv")


def test_unreadable_image_and_bad_header_are_named(tmp_path):
    rows = write_eye_folder(tmp_path, 2)
    (tmp_path / rows[1][0]).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"manifest\.csv:3: .*_R\.jpg: not a readable image"):
        read_eye_manifest(tmp_path / "manifest.csv")
    (tmp_path / "manifest.csv").write_text("path,label\nx.jpg,open\n")
    with pytest.raises(DataError, match=r"manifest\.csv:1: header is"):
        load_dataset(tmp_path, "train")


def test_task_must_match_the_data(eye_folder, fer_files):
    assert steps.resolve_task(eye_folder) == "eye_state"
    assert steps.resolve_task(fer_files["csv"]) == "expression"
    with pytest.raises(ValueError, match="holds eye_state data"):
        steps.resolve_task(eye_folder, "expression")


def test_nir_augmentation_is_seeded_in_range_and_off_by_default():
    x = torch.rand(32, 1, 24, 24) * 255
    cfg = PRESETS["eye_state"]
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, augment_batch(x, cfg, torch.Generator().manual_seed(3)))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 255
    default = AugmentConfig()
    assert default.nir == default.glare == default.gradient == default.downscale == default.blur_sigma == 0
    assert PRESETS["expression"] == default
    only_glare = AugmentConfig(flip=0, rotate_deg=0, scale=0, shift=0, brightness=0, contrast=0, gamma=0, noise=0,
                               blur=0, occlusion=0, glare=1.0)
    dark = torch.zeros(8, 1, 24, 24)
    lit = augment_batch(dark, only_glare, torch.Generator().manual_seed(0))
    assert (lit.amax(dim=(1, 2, 3)) > 40).all()  # every sample got a bright spot
    flat = torch.full((4, 1, 24, 24), 90.0)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([0.5, 1.0, 2.0, 3.0])), flat, atol=1e-3)


def test_grouped_accuracy_per_patch_eye_and_face(eye_folder):
    test = load_dataset(eye_folder, "test")
    logits = np.zeros((len(test), 2), dtype=np.float32)
    logits[np.arange(len(test)), test.targets] = 1.0
    logits[0] = logits[0][::-1] * 3  # first patch (a left eye) confidently wrong: its face goes wrong too
    report = grouped_accuracy(test, logits)
    n = len(test)
    assert report["per_patch"]["accuracy"] == pytest.approx((n - 1) / n)
    assert report["per_eye"]["left"]["accuracy"] == pytest.approx((n / 2 - 1) / (n / 2))
    assert report["per_eye"]["right"]["accuracy"] == 1.0
    assert report["per_face"]["n"] == n // 2
    assert report["per_face"]["accuracy"] == report["per_face"]["both_correct"] == pytest.approx((n / 2 - 1) / (n / 2))


@pytest.fixture(scope="module")
def eye_built(eye_folder, tmp_path_factory):
    work = tmp_path_factory.mktemp("eye-pipeline")
    soft = work / "teacher.npz"
    desc = steps.make_teacher(eye_folder, soft, train_arch="micro", cfg=TrainConfig(epochs=6, alpha=0.0, **FAST))
    student = steps.distill(eye_folder, work / "student", soft_labels=soft,
                            cfg=TrainConfig(epochs=12, alpha=0.5, temperature=3.0, **FAST))
    pruned = steps.prune(eye_folder, work / "student" / "best.pt", work / "pruned", ratio=0.5, soft_labels=soft,
                         cfg=TrainConfig(epochs=4, alpha=0.5, temperature=3.0, **{**FAST, "lr": 0.02}))
    shipped = steps.quantize(eye_folder, work / "pruned" / "best.pt", "eye-tiny", work / "models",
                             reports_dir=work / "reports",
                             bounds=ParityBounds(max_accuracy_drop=0.1, min_top1_agreement=0.85))
    return {"work": work, "teacher": desc, "student": student, "pruned": pruned, "shipped": shipped}


def test_eye_pipeline_learns_with_the_task_defaults(eye_built):
    assert eye_built["teacher"]["task"] == "eye_state"
    student = eye_built["student"]
    assert student["arch"] == "eye-student" and student["task"] == "eye_state" and student["input_size"] == 24
    assert student["config"]["augment"] == PRESETS["eye_state"].model_dump()  # the NIR preset was used
    assert student["val_acc"] > 0.75
    pruned = eye_built["pruned"]
    assert pruned["macs_after"] < 0.5 * pruned["macs_before"]
    assert pruned["val_acc_after_finetune"] > 0.7


def test_eye_contract_records_task_input_split_and_grouped_metrics(eye_built, eye_folder):
    model = eye_built["work"] / "models" / "eye-tiny.tflite"
    contract = load_contract(model)
    assert contract.task == "eye_state" and contract.labels == ["closed", "open"]
    assert (contract.input.height, contract.input.width, contract.input.channels) == (24, 24, 1)
    assert contract.input.dtype == "int8" and contract.input.zero_point == -128
    assert contract.input.scale == pytest.approx(1.0)
    assert contract.dataset["test"] == "test" and contract.dataset["split"]["shares"]["test"] == 0.2
    assert contract.dataset["n"]["test_faces"] * 2 == contract.dataset["n"]["test"]
    test_metrics = contract.metrics["test"]
    for kind in ("float", "int8"):
        assert set(test_metrics[kind]) == {"per_patch", "per_eye", "per_face"}
    assert test_metrics["int8"]["per_patch"]["accuracy"] == pytest.approx(test_metrics["accuracy"])
    robust = contract.metrics["robustness"]
    assert {"original", "nir_like", "equalised", "blur_sigma_1", "zoom_out_15%"} <= set(robust)
    assert robust["original"]["int8"]["patch"] == pytest.approx(test_metrics["accuracy"])
    assert contract.metrics["parity"]["passed"]
    assert [s["run"] for s in contract.recipe["steps"]] == [str(eye_built["work"] / d) for d in ("student", "pruned")]
    assert (eye_built["work"] / "models" / "eye-tiny.onnx").is_file()


def test_eye_runtime_classifier_matches_the_toolchain(eye_built, eye_folder):
    from edgefer.edge.models import Classifier

    test = load_dataset(eye_folder, "test")
    model = eye_built["work"] / "models" / "eye-tiny.tflite"
    expected, _ = run_tflite(model, test.images)
    clf = Classifier(model)
    assert clf.labels == ["closed", "open"]
    assert np.array_equal(clf.probabilities(test.images).argmax(1), expected.argmax(1))
