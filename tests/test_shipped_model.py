"""The model committed under models/: its contract holds and the demo command works with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefer.edge.cli import main
from edgefer.edge.contract import load_contract
from edgefer.edge.models import Classifier, models_dir, resolve

SHIPPED = "fer-student"


def test_shipped_model_meets_its_contract():
    path = resolve(SHIPPED)
    contract = load_contract(path)  # checks size and sha256
    assert path.parent == models_dir()
    assert contract.format == "tflite" and contract.input.dtype == "int8" and contract.output.dtype == "int8"
    assert contract.input.scale == pytest.approx(1.0) and contract.input.zero_point == -128
    assert contract.bytes < 1_000_000
    assert contract.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    parity = contract.metrics["parity"]
    assert parity["passed"] and parity["int8_accuracy_drop"] <= parity["bounds"]["max_accuracy_drop"]
    assert (models_dir() / f"{SHIPPED}.onnx").is_file()


def test_shipped_model_runs_on_crops():
    clf = Classifier(SHIPPED)
    crops = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    probs = clf.probabilities(crops)
    assert probs.shape == (3, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_predict_demo_on_a_real_photo(capsys):
    assert main(["predict", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == SHIPPED and result["path"].endswith("grace_hopper.jpg")
    assert len(result["faces"]) == 1
    expression = result["faces"][0]["expression"]
    assert list(expression) == Classifier(SHIPPED).labels
    assert sum(expression.values()) == pytest.approx(1.0, abs=1e-3)


def test_unknown_model_and_unreadable_image_are_clear_errors(tmp_path, capsys):
    assert main(["predict", "--model", "no-such-model"]) == 2
    assert "no model named 'no-such-model'; shipped: eye-state, fer-student" in capsys.readouterr().err
    bad = tmp_path / "x.png"
    bad.write_bytes(b"garbage")
    assert main(["predict", str(bad)]) == 2
    assert "x.png: not a readable image" in capsys.readouterr().err
