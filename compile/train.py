"""One training loop for teacher, student, distillation and fine-tuning.

Checkpoints every epoch and resumes from them (a long CPU run can be cut off at any time), logs one line per
epoch to ``train.log`` and the curves to ``history.json``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm import tqdm

from compile.augment import AugmentConfig, augment_batch
from compile.data import FaceSet


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(30, ge=1, le=1000)
    batch_size: int = Field(128, ge=1, le=4096)
    lr: float = Field(0.1, gt=0, le=10, description="peak learning rate of the one-cycle schedule (SGD)")
    weight_decay: float = Field(5e-4, ge=0, le=0.1)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(4.0, gt=0, le=50, description="distillation temperature (Hinton)")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft (teacher) loss; 0 = hard labels only")
    class_balance: float = Field(0.0, ge=0, le=1, description="per-sample weight (class count / mean)^-beta; "
                                 "0 = none, 1 = fully inverse-frequency (lifts UAR on rare classes such as disgust)")
    seed: int = 0
    threads: int = Field(2, ge=1, le=256)
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap, for smoke tests")
    augment: AugmentConfig | None = Field(None, description="None = the task's preset (augment.PRESETS), "
                                          "filled in by compile.steps so the recorded config is concrete")


def soften(probs: np.ndarray | torch.Tensor, temperature: float) -> torch.Tensor:
    """Teacher probabilities at temperature T: softmax(log p / T), i.e. p^(1/T) renormalised."""
    p = torch.as_tensor(probs, dtype=torch.float32).clamp_min(1e-8)
    return torch.softmax(torch.log(p) / temperature, dim=1)


def class_weights(targets: np.ndarray, n_classes: int, beta: float) -> torch.Tensor:
    """(count_c / mean count)^-beta, normalised so the average sample weight stays 1."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64).clip(1)
    w = (counts / counts.mean()) ** -beta
    w /= (w[targets]).mean()
    return torch.tensor(w, dtype=torch.float32)


def distillation_loss(logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None,
                      cfg: TrainConfig, has_soft: torch.Tensor | None = None,
                      sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per sample: (1-alpha) * CE(hard label) + alpha * T^2 * KL(teacher_T || student_T), weighted mean.

    Samples without a teacher opinion (``has_soft`` False) get the hard loss alone.
    """
    ce = F.cross_entropy(logits, hard, label_smoothing=cfg.label_smoothing, reduction="none")
    sw = sample_weight if sample_weight is not None else torch.ones_like(ce)
    if soft is None or cfg.alpha == 0:
        return (sw * ce).mean()
    t = cfg.temperature
    log_student = F.log_softmax(logits / t, dim=1)
    kd = (soft * (torch.log(soft.clamp_min(1e-8)) - log_student)).sum(dim=1) * t * t
    w = torch.full_like(ce, cfg.alpha)
    if has_soft is not None:
        w = w * has_soft.float()
    return (sw * ((1 - w) * ce + w * kd)).mean()


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).float().unsqueeze(1)
        out.append(model(x).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def accuracy(model: nn.Module, data: FaceSet) -> float:
    return float((predict_logits(model, data.images).argmax(1) == data.targets).mean())


#: Config fields that do not change what is trained: a run may resume with another thread count.
RESUME_FREE = ("threads",)


def _same_run(saved: dict, current: dict) -> bool:
    return ({k: v for k, v in saved.items() if k not in RESUME_FREE}
            == {k: v for k, v in current.items() if k not in RESUME_FREE})


def _log(out_dir: Path, text: str) -> None:
    print(text, flush=True)
    with open(out_dir / "train.log", "a") as fh:
        fh.write(text + "\n")


def fit(model: nn.Module, train: FaceSet, val: FaceSet, cfg: TrainConfig, out_dir: str | Path,
        soft_targets: np.ndarray | None = None, tag: str = "train") -> dict:
    """Train ``model`` in place and leave the best-on-``val`` weights in it.

    ``soft_targets``: teacher probabilities [len(train), classes] (NaN rows = no teacher opinion, hard loss
    only). Writes ``checkpoint.pt`` (resume), ``best.pt`` (whole model), ``history.json``, ``train.log``.
    Returns the history dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    n = len(train)
    steps = math.ceil(n / cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps,
                                                pct_start=0.15)
    history: dict = {"tag": tag, "config": cfg.model_dump(), "epochs": []}
    best_acc, start_epoch = -1.0, 0

    ckpt_path = out_dir / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, weights_only=False)
        if _same_run(ckpt["config"], cfg.model_dump()):
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            gen.set_state(ckpt["generator"])
            if "torch_rng" in ckpt:  # dropout draws from the global generator
                torch.set_rng_state(ckpt["torch_rng"])
            history, best_acc, start_epoch = ckpt["history"], ckpt["best_acc"], ckpt["epoch"] + 1
            _log(out_dir, f"[{tag}] resumed after epoch {ckpt['epoch'] + 1}/{cfg.epochs}")
        else:
            _log(out_dir, f"[{tag}] {ckpt_path} has another config; starting afresh")

    soft_all = None
    has_soft = None
    if soft_targets is not None:
        if len(soft_targets) != n:
            raise ValueError(f"soft targets have {len(soft_targets)} rows, training set {n}")
        has_soft = torch.from_numpy(~np.isnan(soft_targets).any(axis=1))
        soft_all = soften(np.nan_to_num(soft_targets, nan=1.0 / soft_targets.shape[1]), cfg.temperature)

    images = torch.from_numpy(train.images).float().unsqueeze(1)
    targets = torch.from_numpy(train.targets)
    weights = class_weights(train.targets, len(train.labels), cfg.class_balance)[targets] \
        if cfg.class_balance > 0 else None
    augment = cfg.augment or AugmentConfig()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.monotonic()
        order = torch.randperm(n, generator=gen)
        total_loss, seen = 0.0, 0
        bar = tqdm(range(steps), desc=f"{tag} {epoch + 1}/{cfg.epochs}", leave=False, disable=None)
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = augment_batch(images[idx], augment, gen)
            logits = model(x)
            sw = weights[idx] if weights is not None else None
            if soft_all is None:
                loss = distillation_loss(logits, targets[idx], None, cfg, sample_weight=sw)
            else:
                loss = distillation_loss(logits, targets[idx], soft_all[idx], cfg, has_soft[idx], sw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        val_acc = accuracy(model, val)
        record = {"epoch": epoch + 1, "loss": total_loss / max(seen, 1), "val_acc": val_acc,
                  "lr": sched.get_last_lr()[0], "seconds": time.monotonic() - t0}
        history["epochs"].append(record)
        if val_acc > best_acc:
            best_acc = val_acc
            torch.save(model, out_dir / "best.pt")
        _log(out_dir, f"[{tag}] epoch {epoch + 1}/{cfg.epochs} loss {record['loss']:.4f} "
                      f"val_acc {val_acc:.4f} (best {best_acc:.4f}) {record['seconds']:.0f}s")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "history": history,
                    "best_acc": best_acc, "epoch": epoch,
                    "config": cfg.model_dump()}, ckpt_path.with_suffix(".tmp"))
        ckpt_path.with_suffix(".tmp").replace(ckpt_path)
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))

    best = torch.load(out_dir / "best.pt", weights_only=False)
    model.load_state_dict(best.state_dict())
    history["best_val_acc"] = best_acc
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    return history
