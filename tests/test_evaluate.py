from __future__ import annotations

import numpy as np
import pytest

from edgefer.compile.evaluate import classification_report, confusion_matrix, metrics_from_confusion, plot_confusion


def test_confusion_and_metrics_match_hand_computation():
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    pred = np.array([0, 1, 0, 1, 1, 2, 0, 2, 1, 2])
    cm = confusion_matrix(truth, pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [1, 1, 3]]
    m = metrics_from_confusion(cm, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["uar"] == pytest.approx((2 / 3 + 2 / 2 + 3 / 5) / 3)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 4)
    assert m["per_class"]["c"]["precision"] == pytest.approx(3 / 3)
    f1_b = 2 * 0.5 * 1.0 / 1.5
    assert m["per_class"]["b"]["f1"] == pytest.approx(f1_b)
    assert m["per_class"]["c"]["support"] == 5


def test_absent_class_is_left_out_of_uar():
    cm = np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    m = metrics_from_confusion(cm, ["a", "b", "c"])
    assert m["per_class"]["c"]["recall"] is None
    assert m["uar"] == pytest.approx((3 / 4 + 1.0) / 2)


def test_report_from_logits_and_plot(tmp_path):
    logits = np.array([[2.0, 0.1], [0.2, 1.0], [3.0, 0.0]])
    report = classification_report(np.array([0, 1, 1]), logits, ["x", "y"])
    assert report["confusion"] == [[1, 0], [1, 1]]
    png = plot_confusion(report, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
