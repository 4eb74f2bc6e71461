"""Post-hoc logit adjustment, and the rule that picks the shipped student.

FER2013's classes are far from balanced (disgust is 1.5 % of Training, happy 25 %), and a student trained on it
leans towards the frequent classes: accuracy holds while UAR (mean per-class recall) suffers. Logit adjustment
(Menon et al., "Long-tail learning via logit adjustment", ICLR 2021) subtracts ``tau * log(prior)`` from the
logits, the training-set class prior. It is one number per class added to the classifier's bias, so it is
folded into the model and costs nothing at inference.

``tau`` is chosen on the validation split (PublicTest for FER2013) by the same rule that picks the shipped run:
the mean of accuracy and UAR, because the issue sets a floor on both. The test split is never looked at here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgefer.compile.evaluate import classification_report

#: The grid ``tau`` is chosen from. Negative values lean towards the frequent classes (training already weights
#: rare classes up with ``--class-balance``, which may overshoot), positive ones towards the rare classes.
TAU_GRID: tuple[float, ...] = tuple(round(t, 2) + 0.0 for t in np.arange(-0.5, 1.5001, 0.05))

#: The declared selection rule, written into sidecars and summaries so a reader knows how a model was chosen. The
#: split is named beside it where it is applied (FER2013 alone: PublicTest; a mix: each source's own, pooled for
#: tau, averaged per set by tools/select_student.py).
SELECTION_RULE = "highest mean of accuracy and UAR on the validation split"


def selection_score(accuracy: float, uar: float) -> float:
    """The declared rule: both are floors of the shipped model, so neither may be bought with the other."""
    return (accuracy + uar) / 2


#: How much a challenger must beat the shipped run's score by to replace it (declared 2026-12-01, after a
#: challenger won by 0.0002, i.e. by less than one PublicTest face; applies from the next round on). 0.005 is
#: a fraction of the noise of a 3,589-face split (one binomial standard error of accuracy is ~0.008), so it
#: stops ties from churning the shipped model without locking out a real gain.
INCUMBENT_MARGIN = 0.005


def choose_run(rows: list[dict], incumbent: str | None = None, margin: float = INCUMBENT_MARGIN) -> dict:
    """The row to ship among candidate ``rows`` (each with ``run`` and ``score``): the best score, except that
    the ``incumbent`` run (the one shipped now) stays unless the best beats its score by more than ``margin``."""
    best = max(rows, key=lambda r: r["score"])
    if incumbent is None:
        return best
    current = next((r for r in rows if r["run"] == incumbent), None)
    if current is None:
        raise ValueError(f"the incumbent {incumbent} is not among the candidates")
    return best if best["score"] > current["score"] + margin else current


def log_prior(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """log of the class frequencies of ``targets``; a class never seen gets the count 1."""
    counts = np.bincount(np.asarray(targets), minlength=n_classes).astype(np.float64).clip(1)
    return np.log(counts / counts.sum())


def tau_table(logits: np.ndarray, targets: np.ndarray, labels: list[str] | tuple[str, ...],
              prior: np.ndarray, grid: tuple[float, ...] = TAU_GRID) -> list[dict]:
    """Accuracy, UAR and the selection score of ``logits - tau * prior`` for every tau of the grid."""
    rows = []
    for tau in grid:
        report = classification_report(targets, logits - tau * prior, labels)
        rows.append({"tau": float(tau), "accuracy": report["accuracy"], "uar": report["uar"],
                     "score": selection_score(report["accuracy"], report["uar"])})
    return rows


def choose_tau(rows: list[dict]) -> dict:
    """The grid row with the best score; ties go to the smallest |tau| (the least change to the model)."""
    return max(rows, key=lambda r: (round(r["score"], 10), -abs(r["tau"])))


def fold_into_classifier(model: nn.Module, shift: np.ndarray) -> None:
    """Add ``shift`` (one value per class) to the bias of the model's last linear layer, in place.

    Only valid when that layer's output is the model's output (true of every net in edgefer.compile.nets)."""
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ValueError(f"{type(model).__name__} has no linear classifier 'fc' to fold the adjustment into")
    if fc.out_features != len(shift):
        raise ValueError(f"adjustment has {len(shift)} values but the classifier has {fc.out_features} outputs")
    with torch.no_grad():
        if fc.bias is None:
            fc.bias = nn.Parameter(torch.zeros(fc.out_features))
        fc.bias += torch.as_tensor(shift, dtype=fc.bias.dtype)
