"""Issue 15's held-out check as pure functions: a model's probabilities in a set's label order, a photos-mode
report (an image with no face found is an extra confusion column, always wrong), the verdict of one set against
the peer (floor: beat it in accuracy and UAR; goal: +5 points in each) and over all sets, and whether a set comes
from a model's own training source. ``tools/heldout_check.py`` runs the models and prints them."""

from __future__ import annotations

import numpy as np

from edgefer.compile.data import FER_LABELS, FOLDER_ALIASES
from edgefer.compile.evaluate import confusion_matrix, metrics_from_confusion

#: Issue 15: the floor is to beat the peer in accuracy and UAR on every set; the goal is this many points each.
FLOOR_POINTS = 0.0
GOAL_POINTS = 5.0
#: The column of "no face found" in a photos-mode confusion matrix (it counts as wrong).
NO_FACE = "no face"


def to_set_labels(probs: np.ndarray, model_labels: list[str] | tuple[str, ...],
                  set_labels: tuple[str, ...] = FER_LABELS) -> np.ndarray:
    """A model's probabilities in the set's label order (by name, aliases allowed); a class the model lacks gets 0."""
    out = np.zeros((len(probs), len(set_labels)), dtype=np.float64)
    for i, name in enumerate(model_labels):
        name = FOLDER_ALIASES.get(name.lower(), name.lower())
        if name in set_labels:
            out[:, set_labels.index(name)] += probs[:, i]
    return out


def label_index(name: str | None, labels: tuple[str, ...] = FER_LABELS) -> int:
    """A predicted label name -> its index in ``labels``; -1 for no face or a class outside the set."""
    if name is None:
        return -1
    name = FOLDER_ALIASES.get(name.lower(), name.lower())
    return labels.index(name) if name in labels else -1


def photo_report(truth: np.ndarray, pred: np.ndarray, labels: tuple[str, ...] = FER_LABELS) -> dict:
    """Accuracy, UAR, per-class recall and confusion over *all* images: ``pred`` -1 (no face found, or a class
    outside ``labels``) is an extra confusion column that is never right. Adds ``found_rate``."""
    pred = np.where(np.asarray(pred) < 0, len(labels), pred)
    cm = confusion_matrix(truth, pred, len(labels) + 1)
    report = metrics_from_confusion(cm, (*labels, NO_FACE))
    report["found_rate"] = float(cm[:, :len(labels)].sum() / max(1, cm.sum()))
    return report


def verdict(ours: dict, peer: dict | None, floor_points: float = FLOOR_POINTS,
            goal_points: float = GOAL_POINTS) -> dict:
    """Issue 15's verdict on one set from two reports (accuracy and UAR, 0..1): deltas in points, the floor (beat
    the peer in both, by more than ``floor_points``) and the goal (at least ``goal_points`` in both). Without a
    peer report both are None."""
    if peer is None:
        return {"delta_accuracy_points": None, "delta_uar_points": None, "floor": None, "goal": None}
    # rounded so that 0.70 - 0.65 reads as the 5.0 points it is, not 4.999...
    d_acc = round((ours["accuracy"] - peer["accuracy"]) * 100.0, 9)
    d_uar = round((ours["uar"] - peer["uar"]) * 100.0, 9)
    return {"delta_accuracy_points": d_acc, "delta_uar_points": d_uar,
            "floor": bool(d_acc > floor_points and d_uar > floor_points),
            "goal": bool(d_acc >= goal_points and d_uar >= goal_points)}


def overall(verdicts: list[dict]) -> dict:
    """Across sets: the floor must hold on every one, the goal on each; None when any set lacks a peer."""
    if not verdicts or any(v["floor"] is None for v in verdicts):
        return {"floor": None, "goal": None, "sets": len(verdicts)}
    return {"floor": all(v["floor"] for v in verdicts), "goal": all(v["goal"] for v in verdicts),
            "sets": len(verdicts)}


def same_source(set_source: str, training: str) -> bool:
    """Whether a set comes from a source the model was trained on (a held-out slice of it, not a cross-domain
    set): ``training`` is a sidecar's dataset name, several joined by ``+`` for a mix."""
    return set_source.lower() in {part.strip().lower() for part in training.split("+")}
