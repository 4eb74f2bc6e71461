"""Classification metrics and report plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(truth), np.asarray(pred)), 1)
    return cm


def metrics_from_confusion(cm: np.ndarray, labels: list[str] | tuple[str, ...]) -> dict:
    """Accuracy, UAR (mean per-class recall over classes present) and per-class precision / recall / F1."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + np.nan_to_num(recall) > 0,
                      2 * precision * np.nan_to_num(recall) / (precision + np.nan_to_num(recall)), 0.0)
    present = support > 0
    total = cm.sum()
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]) if present[i] else None,
               "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(labels)
    }
    return {
        "n": int(total),
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "uar": float(np.nanmean(recall[present])) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": per_class,
        "labels": list(labels),
        "confusion": cm.astype(np.int64).tolist(),
    }


def classification_report(truth: np.ndarray, logits: np.ndarray, labels: list[str] | tuple[str, ...]) -> dict:
    return metrics_from_confusion(confusion_matrix(truth, logits.argmax(1), len(labels)), labels)


def format_report(report: dict) -> str:
    lines = [f"n={report['n']}  accuracy {report['accuracy']:.4f}  UAR {report['uar']:.4f}  "
             f"macro-F1 {report['macro_f1']:.4f}", f"{'class':>10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>6}"]
    for name, m in report["per_class"].items():
        recall = "  -   " if m["recall"] is None else f"{m['recall']:.3f}"
        lines.append(f"{name:>10} {m['precision']:6.3f} {recall:>6} {m['f1']:6.3f} {m['support']:6d}")
    return "\n".join(lines)


def plot_confusion(report: dict, path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(report["confusion"], dtype=np.float64)
    norm = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    labels = report["labels"]
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.55 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {report['accuracy']:.3f}, UAR {report['uar']:.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_history(histories: list[dict], path: str | Path) -> Path:
    """Training loss and validation accuracy per epoch, one line per run (history.json files); runs that
    continue an earlier one (prune after distill) start where it ended on the epoch axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    offset = 0
    for h in histories:
        epochs = [offset + e["epoch"] for e in h["epochs"]]
        offset = epochs[-1] if epochs else offset
        ax_loss.plot(epochs, [e["loss"] for e in h["epochs"]], label=h.get("tag", ""))
        ax_acc.plot(epochs, [e["val_acc"] for e in h["epochs"]], label=h.get("tag", ""))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_json(obj: dict, path: str | Path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")
    return Path(path)


def evaluate_model(model: str | Path, data: str | Path, split: str, out_dir: str | Path,
                   backend: str | None = None) -> dict:
    """Run a shipped model (through the device runtime's backends) on a labelled split; write JSON + PNG."""
    from tqdm import tqdm

    from edgefer.compile.data import load_dataset
    from edgefer.edge.models import Classifier

    test = load_dataset(data, split)
    classifier = Classifier(model, backend=backend)
    if list(test.labels) != classifier.labels:
        raise ValueError(f"{model}: labels {classifier.labels} differ from the data's {list(test.labels)}")
    size = classifier.input_size
    images = test.images
    if images.shape[1:] != (size[1], size[0]):
        import cv2

        images = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images])
    batch = 256
    probs = np.concatenate([classifier.probabilities(images[i:i + batch])
                            for i in tqdm(range(0, len(images), batch), desc="eval", disable=None)])
    report = classification_report(test.targets, probs, test.labels)
    report.update({"model": classifier.contract.name, "backend": classifier.backend.describe(),
                   "data": str(data), "split": test.source})
    out_dir = Path(out_dir)
    write_json(report, out_dir / "eval.json")
    plot_confusion(report, out_dir / "confusion.png", f"{classifier.contract.name} on {test.source}: "
                   f"acc {report['accuracy']:.3f}, UAR {report['uar']:.3f}")
    return report


def grouped_accuracy(data, logits: np.ndarray) -> dict:
    """Accuracy per patch, per side (left / right eye) and per face for data with several images per face
    (``data.groups``, ``data.sides``). A face's prediction averages its patches' probabilities; ``both_correct``
    is the share of faces whose every patch is right."""
    pred = logits.argmax(1)
    right = pred == data.targets
    out: dict = {"per_patch": {"n": int(len(right)), "accuracy": float(right.mean()) if len(right) else float("nan")}}
    if len(data.sides):
        out["per_eye"] = {str(side): {"n": int((data.sides == side).sum()),
                                      "accuracy": float(right[data.sides == side].mean())}
                          for side in sorted(set(data.sides))}
    if len(data.groups):
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        faces = sorted(set(data.groups))
        index = {g: i for i, g in enumerate(faces)}
        gi = np.array([index[g] for g in data.groups])
        mean_probs = np.zeros((len(faces), probs.shape[1]))
        np.add.at(mean_probs, gi, probs)
        truth = np.zeros(len(faces), dtype=np.int64)
        truth[gi] = data.targets
        all_right = np.ones(len(faces), dtype=bool)
        np.logical_and.at(all_right, gi, right)
        out["per_face"] = {"n": len(faces), "accuracy": float((mean_probs.argmax(1) == truth).mean()),
                           "both_correct": float(all_right.mean())}
    return out
