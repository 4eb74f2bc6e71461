"""The device side must stay installable on a Pi: no TensorFlow, Keras or PyTorch behind edge/."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgefer.edge.contract import CropSpec
from edgefer.edge.crop import crop, expand_box


def test_device_modules_import_no_heavy_framework():
    code = (
        "import sys, edgefer.edge.cli, edgefer.edge.models, edgefer.edge.crop, edgefer.edge.detectors, "
        "edgefer.edge.sources, edgefer.edge.outputs, edgefer.edge.backends;"
        "edgefer.edge.backends.registry();"
        "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'tf_keras', 'edgefer.compile.train') "
        "if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_backend_registry_finds_one_module_per_backend():
    from edgefer.edge import backends

    found = backends.registry()
    assert {"litert", "onnxruntime"} <= set(found)
    assert found["litert"].formats == ("tflite",)


def test_crop_margin_and_border_replication():
    frame = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    assert expand_box((10, 20, 40, 40), CropSpec(margin=0.25)) == (0.0, 10.0, 60.0, 60.0)
    assert expand_box((10, 20, 40, 20), CropSpec(margin=0.0)) == (10.0, 10.0, 40.0, 40.0)
    patch = crop(frame, (-10, -10, 40, 40), CropSpec(margin=0.0), (48, 48))
    assert patch.shape == (48, 48)
    assert patch[0, 0] == frame[0, 0]  # outside the frame: the border pixel, not black
    with pytest.raises(ValueError, match="grey frame"):
        crop(np.zeros((10, 10, 3), np.uint8), (0, 0, 5, 5), CropSpec(), (48, 48))


def test_haar_detector_finds_the_sample_face():
    import cv2

    from edgefer.edge.cli import sample_image_path
    from edgefer.edge.detectors.haar import HaarFaceDetector

    gray = cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_GRAYSCALE)
    boxes = HaarFaceDetector().detect(gray)
    assert len(boxes) == 1
    x, y, w, h = boxes[0].box
    assert 150 < x + w / 2 < 320 and 150 < y + h / 2 < 300 and w > 150
