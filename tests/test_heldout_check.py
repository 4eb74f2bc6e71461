"""tools/heldout_check.py and compile/heldout.py: flat class folders (aliases, a skipped contempt class), crops
mode on the shipped model against a brought .tflite, the verdict against issue 15's floor and goal, bad folders,
and photos mode on our side with the peer's column marked missing (no fer package in CI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures import load_tool, synthetic_face, write_image_folder, write_rafdb

from edgefer.compile.data import FER_LABELS, DataError, read_class_folder
from edgefer.compile.heldout import label_index, overall, photo_report, same_source, verdict
from edgefer.edge.models import resolve
from edgefer.edge.samples import sample_image_path

hc = load_tool("heldout_check")

#: Folder names as other sets spell them (FER2013 order), plus a class our models lack.
ALIASES = ("anger", "disgusted", "fearful", "happiness", "sadness", "surprised", "neutral")


def _flat_set(root: Path, per_class: int = 3, contempt: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(ALIASES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / name / f"im{i}.png"), synthetic_face(label, rng, size=64))
    (root / "contempt").mkdir()
    for i in range(contempt):
        cv2.imwrite(str(root / "contempt" / f"im{i}.jpg"), synthetic_face(0, rng, size=64))
    (root / "neutral" / "notes.txt").write_text("not an image: ignored")
    return root


def test_a_flat_class_folder_reads_aliases_and_skips_and_counts_contempt(tmp_path):
    root = _flat_set(tmp_path / "set")
    faces, skipped = read_class_folder(root, size=48)
    assert skipped == {"contempt": 2}
    assert faces.images.shape == (21, 48, 48) and faces.labels == FER_LABELS
    assert faces.class_counts() == {name: 3 for name in FER_LABELS}
    assert faces.groups[0] == "anger/im0.png" and faces.targets[0] == FER_LABELS.index("angry")
    held = hc.open_set(root)
    assert held.kind == "class folder" and held.skipped == {"contempt": 2} and len(held.files) == 21
    assert held.faces(64).images.shape == (21, 64, 64)  # read again at a model's own input size
    split_root = tmp_path / "splits"  # an image-folder root: its test/ by default, any split by name
    write_image_folder(split_root, per_class=2, split="test")
    write_image_folder(split_root, per_class=1, split="val")
    assert len(hc.open_set(split_root).files) == 14 and hc.open_set(split_root).kind == "image folder"
    assert len(hc.open_set(split_root, "PublicTest").faces(48)) == 7


def test_bad_sets_are_errors_that_name_the_folder(tmp_path, capsys):
    odd = tmp_path / "odd"
    _flat_set(odd)
    (odd / "bored").mkdir()
    cv2.imwrite(str(odd / "bored" / "a.png"), np.zeros((48, 48), np.uint8))
    with pytest.raises(DataError, match=r"odd.*neither a class folder"):
        hc.open_set(odd)
    with pytest.raises(DataError, match="bored"):
        read_class_folder(odd)
    empty = tmp_path / "empty"
    (empty / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty: no images found"):
        hc.open_set(empty)
    rafdb = tmp_path / "rafdb"
    write_rafdb(rafdb, per_class=2)
    with pytest.raises(DataError, match=r"rafdb: a RAF-DB folder is scored on its validation slice only"):
        hc.open_set(rafdb, "train")
    assert hc.main([str(tmp_path / "missing"), "--peer", str(resolve("fer-student"))]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err


def test_verdict_against_the_floor_and_the_goal_exact_numbers():
    peer = {"accuracy": 0.65, "uar": 0.61}
    # +5.0 points in both: the goal is met at exactly five points (0.70 - 0.65 is 5.000000000000004 in floats)
    assert verdict({"accuracy": 0.70, "uar": 0.66}, peer) == {
        "delta_accuracy_points": 5.0, "delta_uar_points": 5.0, "floor": True, "goal": True}
    # better accuracy but a tied UAR: the floor (beat it in both) is missed
    assert verdict({"accuracy": 0.70, "uar": 0.61}, peer) == {
        "delta_accuracy_points": 5.0, "delta_uar_points": 0.0, "floor": False, "goal": False}
    below = verdict({"accuracy": 0.66, "uar": 0.6595}, peer)
    assert below == {"delta_accuracy_points": 1.0, "delta_uar_points": 4.95, "floor": True, "goal": False}
    assert verdict({"accuracy": 0.64, "uar": 0.70}, peer)["floor"] is False
    assert verdict({"accuracy": 0.9, "uar": 0.9}, None) == {
        "delta_accuracy_points": None, "delta_uar_points": None, "floor": None, "goal": None}
    met = verdict({"accuracy": 0.70, "uar": 0.66}, peer)
    assert overall([met, below]) == {"floor": True, "goal": False, "sets": 2}
    assert overall([met, verdict(met, None)]) == {"floor": None, "goal": None, "sets": 2}


def test_a_set_from_a_training_source_is_flagged_in_domain():
    assert same_source("RAF-DB", "FER2013+RAF-DB") and same_source("FER2013", "FER2013")
    assert not same_source("RAF-DB", "FER2013") and not same_source("expw", "unknown")


def test_a_photo_that_shows_no_face_counts_as_wrong():
    report = photo_report(np.array([0, 0, 1, 1]), np.array([0, -1, 1, 0]))
    assert report["n"] == 4 and report["accuracy"] == 0.5 and report["uar"] == 0.5
    assert report["found_rate"] == 0.75
    assert report["confusion"][0][len(FER_LABELS)] == 1  # the "no face" column
    assert report["per_class"]["angry"]["recall"] == 0.5 and report["per_class"]["fear"]["recall"] is None
    assert label_index("happiness") == FER_LABELS.index("happy") and label_index(None) == -1
    assert label_index("contempt") == -1


def test_crops_mode_the_shipped_model_against_a_brought_tflite(tmp_path):
    root = _flat_set(tmp_path / "set")
    rafdb = tmp_path / "rafdb"
    write_rafdb(rafdb, per_class=10)
    # the "peer" is the shipped model's own file, brought as a plain .tflite with no sidecar (raw pixels, 48x48):
    # through the peer path it must score exactly what it scores as our model
    peer = tmp_path / "brought.tflite"
    shutil.copy(resolve("fer-student"), peer)
    out, plot = tmp_path / "out.json", tmp_path / "out.png"
    assert hc.main([str(root), str(rafdb), "--peer", str(peer), "--peer-convention", "raw48",
                    "--json-out", str(out), "--plot", str(plot)]) == 0
    result = json.loads(out.read_text())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ours_name,) = result["models"]
    sha = json.loads(resolve("fer-student").with_suffix(".json").read_text())["sha256"]
    assert ours_name == f"fer-student@{sha[:12]}" and result["peer"]["convention"] == "raw48"
    trained = result["models"][ours_name]["trained_on"]  # FER2013 now; a later student may add RAF-DB
    flat, raf = result["sets"]
    assert flat["kind"] == "class folder" and flat["skipped"] == {"contempt": 2} and flat["n"] == 21
    assert raf["kind"] == "RAF-DB" and raf["n"] == 7 and raf["source"].endswith(":val")  # one per class, val only
    for entry in (flat, raf):
        ours, brought = entry["crops"][ours_name], entry["crops"]["peer"]
        assert ours["confusion"] == brought["confusion"] and sum(map(sum, ours["confusion"])) == entry["n"]
        assert set(ours["per_class"]) == set(FER_LABELS)
        assert entry["verdicts"]["crops"][ours_name] == {"delta_accuracy_points": 0.0, "delta_uar_points": 0.0,
                                                         "floor": False, "goal": False}
        assert "photos" not in entry
        assert entry["in_domain_for"] == ([ours_name] if entry is raf and "RAF-DB" in trained else [])
    assert result["overall"] == {"crops": {ours_name: {"floor": False, "goal": False, "sets": 2}}}
    assert result["machine"] and result["floor_points"] == 0.0 and result["goal_points"] == 5.0


def test_photos_mode_scores_ours_and_marks_the_peer_missing(tmp_path, monkeypatch, capsys):
    root = tmp_path / "photos"
    (root / "neutral").mkdir(parents=True)
    (root / "happy").mkdir()
    shutil.copy(sample_image_path("grace_hopper"), root / "neutral" / "grace_hopper.jpg")
    cv2.imwrite(str(root / "happy" / "wall.png"), np.full((240, 320), 128, np.uint8))  # no face in it
    monkeypatch.setattr(hc, "fer_importable", lambda: False)  # as in CI, whatever this machine has installed
    result = hc.run_check([hc.open_set(root)], {"ours": resolve("fer-student")}, peer=None, photos=True)
    entry = result["sets"][0]
    photos = entry["photos"]["ours"]
    assert photos["n"] == 2 and photos["found_rate"] == 0.5
    assert photos["confusion"][FER_LABELS.index("happy")][len(FER_LABELS)] == 1  # the wall: no face, wrong
    assert "peer" not in entry["photos"] and "not importable" in entry["photos_peer_missing"]
    assert entry["verdicts"]["photos"]["ours"]["floor"] is None
    text = hc.format_table(result)
    assert "MISSING: the fer package is not importable" in text and "no peer" in text


def test_photos_mode_on_a_csv_says_it_has_no_photos(fer_files):
    held = hc.open_set(fer_files["csv"])
    assert held.kind == "fer2013.csv" and held.files is None and len(held.faces(48)) == 140
    reports, why = hc.score_photos(held, {"ours": resolve("fer-student")})
    assert reports == {} and "photos mode skipped" in why

