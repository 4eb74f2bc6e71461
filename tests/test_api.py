"""The library front door: ``edgefer.analyze(image)``, and the README's example run as written."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgefer
from edgefer.edge.samples import sample_image_path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs_as_written(capsys):
    text = README.read_text()
    block = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert block, "README lost its Python API example"
    exec(compile(block.group(1), "README.md:api-example", "exec"), {})
    printed = capsys.readouterr().out
    assert "neutral" in printed and "eyes" not in printed  # it printed the face's fields


def test_analyze_takes_a_path_a_bgr_array_or_a_grey_array_and_agrees_with_the_cli():
    from edgefer.edge import config
    from edgefer.edge.cli import analyze_paths

    photo = sample_image_path("grace_hopper")
    by_path = edgefer.analyze(photo)
    # a BGR frame is made grey as the monitor makes camera frames grey (a path is decoded grey, as the CLI does)
    bgr = cv2.imread(str(photo))
    assert [f.to_json() for f in edgefer.analyze(bgr)] == \
        [f.to_json() for f in edgefer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))]
    assert [f.top_expression for f in edgefer.analyze(bgr)] == [f.top_expression for f in by_path]
    cli = analyze_paths([str(photo)], config.load())[0]["faces"]
    assert [f.box for f in by_path] == [tuple(f["box"]) for f in cli]
    face = by_path[0]
    assert face.expression == cli[0]["expression"] and face.eyes_open == cli[0]["eyes_open"]
    assert 0 <= face.eyes_open <= 1 and 0 <= face.yawn <= 1
    assert face.head_pose == cli[0]["head_pose"] and face.zone == cli[0]["zone"] == "road_ahead"
    assert abs(sum(face.expression.values()) - 1) < 0.01


@pytest.mark.parametrize(("image", "message"), [
    (np.zeros((48, 48), np.float32), "expected uint8 pixels"),
    (np.zeros((2, 48, 48, 3), np.uint8), r"expected a grey HxW or BGR HxWx3"),
    (np.zeros((48, 48, 2), np.uint8), r"got shape \(48, 48, 2\)"),
    (np.zeros((0, 48), np.uint8), r"got shape \(0, 48\)"),
    ("not-an-image.txt", "not a readable image"),
    (42, "expected an image path or a numpy array, got int"),
])
def test_bad_input_is_a_clear_error(tmp_path, image, message):
    if isinstance(image, str):
        image = tmp_path / image
        image.write_text("hello")
    with pytest.raises(ValueError, match=message):
        edgefer.analyze(image)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        edgefer.analyze(tmp_path / "nope.jpg")


def test_a_blank_frame_has_no_faces():
    assert edgefer.analyze(np.full((240, 320, 3), 128, np.uint8)) == []


def test_a_16_bit_image_is_read_as_analyze_reads_it(tmp_path):
    from edgefer.edge.cli import predict_image

    grey = cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_GRAYSCALE)
    path = tmp_path / "face16.png"
    cv2.imwrite(str(path), grey.astype(np.uint16))  # 16-bit with values below 256: an 8-bit decode reads it black
    faces = edgefer.analyze(path)
    assert len(faces) == 1 and faces[0].top_expression == edgefer.analyze(grey)[0].top_expression
    assert len(predict_image(path)["faces"]) == 1
