"""The yawn task: the YawDD frames.csv reader (runtime face detection and mouth crop), the split by session
group, and the whole toolchain (teacher -> distil -> prune -> int8 -> parity) on a generated frame folder whose
frames hold a real face (matplotlib's Grace Hopper) with the mouth drawn open or closed."""

from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np
import pytest
from fixtures import _write_yawn_csv, write_yawn_folder

from edgefer.compile import nets, steps
from edgefer.compile.augment import PRESETS
from edgefer.compile.data import (
    YAWN_CROP_IOD,
    YAWN_LABELS,
    YAWN_SIZE,
    DataError,
    dataset_info,
    load_dataset,
    read_yawn_frames,
    read_yawn_rows,
)
from edgefer.compile.quantize import ParityBounds, run_tflite
from edgefer.compile.train import TrainConfig
from edgefer.edge.contract import load_contract

FAST = dict(lr=0.05, threads=1, batch_size=32)


def _rows(root):
    with open(root / "frames.csv", newline="") as fh:
        return list(csv.reader(fh))[1:]


def test_reads_frames_with_the_runtime_detector_and_mouth_crop(tmp_path):
    from edgefer.edge import detectors
    from edgefer.edge.crop import crop_rotated, eye_line

    rows = write_yawn_folder(tmp_path, 3)
    frames = read_yawn_frames(tmp_path / "frames.csv")
    faces = frames.faces
    assert faces.images.shape == (6, YAWN_SIZE, YAWN_SIZE) and faces.images.dtype == np.uint8
    assert faces.labels == YAWN_LABELS == ("no_yawn", "yawn")
    assert [YAWN_LABELS[t] for t in faces.targets] == [r[2] for r in rows]
    assert list(faces.groups) == [r[4] for r in rows] and list(faces.rows) == list(range(6))
    assert frames.detection_counts() == {"blazeface": 6, "haar": 0, "none": 0, "frames": 6, "face_found_share": 1.0}
    # the crop is exactly the one edge/monitor.py cuts for the yawn model
    bgr = cv2.imread(str(tmp_path / rows[1][0]))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    kps = detectors.create({"type": "blazeface"}).detect(gray)[0].keypoints
    iod, angle = eye_line(kps)
    expected = crop_rotated(gray, kps["mouth"], YAWN_CROP_IOD * iod, angle, (YAWN_SIZE, YAWN_SIZE))
    assert np.array_equal(faces.images[1], expected)
    # the folder and the csv both load, and say what task they hold
    assert dataset_info(tmp_path)["task"] == "yawn" == dataset_info(tmp_path / "frames.csv")["task"]
    assert steps.resolve_task(tmp_path) == "yawn"


def test_haar_fallback_and_frames_without_a_face(tmp_path, monkeypatch):
    from edgefer.edge.detectors.blazeface import BlazeFaceDetector

    rows = write_yawn_folder(tmp_path, 2)
    cv2.imwrite(str(tmp_path / rows[0][0]), np.full((240, 320, 3), 90, np.uint8))  # an empty cabin
    monkeypatch.setattr(BlazeFaceDetector, "detect", lambda self, gray: [])  # BlazeFace finds nothing
    frames = read_yawn_frames(tmp_path / "frames.csv")
    counts = frames.detection_counts()
    assert counts["blazeface"] == 0 and counts["haar"] >= 1 and counts["none"] >= 1
    assert counts["face_found_share"] == counts["haar"] / 4
    assert frames.detector[0] == "none"
    assert list(frames.faces.rows) == list(np.flatnonzero(frames.detector == "haar"))  # face-less frames left out
    # a Haar face has the keypoints the runtime guesses from its box: the crop is still the runtime's
    assert len(frames.faces) == counts["haar"] and frames.faces.images.shape[1:] == (YAWN_SIZE, YAWN_SIZE)


def test_split_keeps_every_session_group_whole(yawn_folder, tmp_path):
    parts = {s: load_dataset(yawn_folder, s) for s in ("train", "val", "test")}
    groups = {s: set(p.groups) for s, p in parts.items()}
    assert all(groups.values())
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    rows = _rows(yawn_folder)
    assert set().union(*groups.values()) == {r[4] for r in rows}
    # every frame of a val/test group is there (both source folders); train holds the source train frames only
    for s in ("val", "test"):
        assert len(parts[s]) == sum(r[4] in groups[s] for r in rows)
    assert all(rows[i][1] == "train" for i in parts["train"].rows)
    leaky = load_dataset(yawn_folder, "yawn_test")
    assert len(leaky) == sum(r[1] == "test" for r in rows) and set(leaky.groups) & groups["train"]
    # FER-style split names map onto train/val/test
    assert np.array_equal(load_dataset(yawn_folder, "PrivateTest").rows, parts["test"].rows)
    # the split depends on the group alone: shuffled rows give the same groups per split
    copy = tmp_path / "copy"
    shutil.copytree(yawn_folder, copy)
    shuffled = list(rows)
    np.random.default_rng(1).shuffle(shuffled)
    _write_yawn_csv(copy, shuffled)
    assert set(load_dataset(copy, "test").groups) == groups["test"]
    with pytest.raises(DataError, match="unknown split 'holdout'"):
        load_dataset(yawn_folder, "holdout")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r[2].__setitem__(2, "sleepy"), r"frames\.csv:4: label 'sleepy' is not one of no_yawn, yawn"),
    (lambda r: r[2].__setitem__(1, "dev"), r"frames\.csv:4: split 'dev' is not train or test"),
    (lambda r: r.__setitem__(2, r[2][:3]), r"frames\.csv:4: expected at least 5 fields"),
    (lambda r: r[2].__setitem__(4, " "), r"frames\.csv:4: empty file, run_id or session_group"),
    (lambda r: r[2].__setitem__(0, "yawn/missing.jpg"), r"frames\.csv:4: .*missing\.jpg: no such file"),
    (lambda r: r[3].__setitem__(0, r[0][0]), r"frames\.csv:5: .* is listed twice \(first on line 2\)"),
])
def test_bad_row_names_file_and_line(tmp_path, edit, message):
    rows = write_yawn_folder(tmp_path, 2)
    edit(rows)
    _write_yawn_csv(tmp_path, rows)
    with pytest.raises(DataError, match=message):
        read_yawn_rows(tmp_path / "frames.csv")


def test_unreadable_image_and_bad_header_are_named(tmp_path):
    rows = write_yawn_folder(tmp_path, 2)
    (tmp_path / rows[2][0]).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=rf"frames\.csv:4: .*{rows[2][0].split('/')[-1]}: not a readable image"):
        read_yawn_frames(tmp_path / "frames.csv")
    (tmp_path / "frames.csv").write_text("file,label\nx.jpg,yawn\n")
    with pytest.raises(DataError, match=r"frames\.csv:1: header is"):
        read_yawn_rows(tmp_path / "frames.csv")


@pytest.fixture(scope="module")
def yawn_built(yawn_folder, tmp_path_factory):
    work = tmp_path_factory.mktemp("yawn-pipeline")
    soft = work / "teacher.npz"
    desc = steps.make_teacher(yawn_folder, soft, train_arch="micro", cfg=TrainConfig(epochs=8, alpha=0.0, **FAST))
    student = steps.distill(yawn_folder, work / "student", soft_labels=soft,
                            cfg=TrainConfig(epochs=25, alpha=0.5, temperature=3.0, **FAST))
    pruned = steps.prune(yawn_folder, work / "student" / "best.pt", work / "pruned", ratio=0.5, soft_labels=soft,
                         cfg=TrainConfig(epochs=6, alpha=0.5, temperature=3.0, **{**FAST, "lr": 0.02}))
    shipped = steps.quantize(yawn_folder, work / "pruned" / "best.pt", "yawn-tiny", work / "models",
                             reports_dir=work / "reports",
                             bounds=ParityBounds(max_accuracy_drop=0.15, min_top1_agreement=0.8))
    return {"work": work, "teacher": desc, "student": student, "pruned": pruned, "shipped": shipped}


def test_yawn_pipeline_learns_with_the_task_defaults(yawn_built):
    assert yawn_built["teacher"]["task"] == "yawn"
    student = yawn_built["student"]
    assert student["arch"] == nets.TASK_ARCHS["yawn"]["student"] == "yawn-student"
    assert student["task"] == "yawn" and student["input_size"] == YAWN_SIZE
    assert student["config"]["augment"] == PRESETS["yawn"].model_dump()  # the yawn preset was used
    assert student["val_acc"] > 0.75
    pruned = yawn_built["pruned"]
    assert pruned["macs_after"] < 0.6 * pruned["macs_before"]


def test_yawn_contract_records_mouth_crop_split_and_leaky_folder(yawn_built, yawn_folder):
    model = yawn_built["work"] / "models" / "yawn-tiny.tflite"
    contract = load_contract(model)
    assert contract.task == "yawn" and contract.labels == ["no_yawn", "yawn"]
    crop = contract.crop
    assert (crop.reference, crop.size_iod, crop.align, crop.interpolation) == ("mouth", YAWN_CROP_IOD, "eyes-level",
                                                                               "linear")
    assert (contract.input.height, contract.input.width, contract.input.channels) == (YAWN_SIZE, YAWN_SIZE, 1)
    assert contract.input.dtype == "int8" and contract.input.zero_point == -128
    assert contract.dataset["split"]["by"].startswith("session_group")
    assert contract.dataset["n"]["test_groups"] == len(set(load_dataset(yawn_folder, "test").groups))
    assert contract.dataset["faces_found"]["face_found_share"] == 1.0
    test = contract.metrics["test"]
    assert set(test["recall"]) == {"no_yawn", "yawn"} and "float" in test
    assert test["source_test_folder"]["split"] == "yawn_test" and "optimistic" in test["source_test_folder"]["caveat"]
    assert contract.metrics["parity"]["passed"]
    assert (yawn_built["work"] / "models" / "yawn-tiny.onnx").is_file()


def test_yawn_runtime_classifier_matches_the_toolchain(yawn_built, yawn_folder):
    from edgefer.edge.models import Classifier

    test = load_dataset(yawn_folder, "test")
    model = yawn_built["work"] / "models" / "yawn-tiny.tflite"
    expected, _ = run_tflite(model, test.images)
    clf = Classifier(model)
    assert clf.labels == ["no_yawn", "yawn"]
    assert np.array_equal(clf.probabilities(test.images).argmax(1), expected.argmax(1))
