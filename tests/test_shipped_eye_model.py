"""The eye-state model committed under models/: its contract holds, it fits the budget, and it reads eye
shape (generated cartoon eyes, nothing like its CEW training photos) rather than photo statistics."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import synthetic_eye

from edgefer.edge.contract import load_contract
from edgefer.edge.models import Classifier, resolve

SHIPPED = "eye-state"


def test_eye_model_meets_its_contract_and_budget():
    contract = load_contract(resolve(SHIPPED))  # checks size and sha256
    assert contract.task == "eye_state" and contract.labels == ["closed", "open"]
    assert (contract.input.height, contract.input.width, contract.input.channels) == (24, 24, 1)
    assert contract.input.dtype == "int8" and contract.output.dtype == "int8"
    assert contract.input.scale == pytest.approx(1.0) and contract.input.zero_point == -128
    assert contract.bytes < 100_000
    parity = contract.metrics["parity"]
    assert parity["passed"] and parity["int8_accuracy_drop"] <= parity["bounds"]["max_accuracy_drop"]
    test = contract.metrics["test"]
    assert test["accuracy"] >= 0.95 and test["int8"]["per_face"]["accuracy"] >= 0.95
    assert contract.dataset["name"] == "CEW" and contract.dataset["test"] == "test"
    assert "nir_like" in contract.metrics["robustness"]


def test_eye_model_reads_the_eyelid_on_generated_eyes():
    rng = np.random.default_rng(0)
    truth = np.arange(100) % 2
    crops = np.stack([synthetic_eye(int(label), rng) for label in truth])
    probs = Classifier(SHIPPED).probabilities(crops)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == truth).mean() >= 0.9
