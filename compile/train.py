"""One training loop for teacher, student, distillation and fine-tuning.

Checkpoints every epoch and resumes from them (a long CPU run can be cut off at any time), logs one line per
epoch to ``train.log`` and the curves to ``history.json``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from edgefer.compile import distributed
from edgefer.compile.augment import AugmentConfig, augment_batch
from edgefer.compile.data import FaceSet


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
    stop_after_epoch: int | None = Field(None, ge=1, description="end this invocation after that epoch (a time "
                                         "slice of a long run, e.g. a cluster job's wall-time limit); the same "
                                         "command without it resumes the run from its checkpoint")
    augment: AugmentConfig | None = Field(None, description="None = the task's preset (augment.PRESETS), "
                                          "filled in by edgefer.compile.steps so the recorded config is concrete")


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


def sample_losses(logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None, cfg: TrainConfig,
                  has_soft: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per sample: weight * ((1-alpha) * CE(hard label) + alpha * T^2 * KL(teacher_T || student_T)).

    Samples without a teacher opinion (``has_soft`` False) get the hard loss alone.
    """
    ce = F.cross_entropy(logits, hard, label_smoothing=cfg.label_smoothing, reduction="none")
    sw = sample_weight if sample_weight is not None else torch.ones_like(ce)
    if soft is None or cfg.alpha == 0:
        return sw * ce
    t = cfg.temperature
    log_student = F.log_softmax(logits / t, dim=1)
    kd = (soft * (torch.log(soft.clamp_min(1e-8)) - log_student)).sum(dim=1) * t * t
    w = torch.full_like(ce, cfg.alpha)
    if has_soft is not None:
        w = w * has_soft.float()
    return sw * ((1 - w) * ce + w * kd)


def distillation_loss(logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None,
                      cfg: TrainConfig, has_soft: torch.Tensor | None = None,
                      sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """The batch mean of :func:`sample_losses`."""
    return sample_losses(logits, hard, soft, cfg, has_soft, sample_weight).mean()


#: Images per forward pass when predicting; sharded prediction splits rows in whole batches of this size, so
#: every batch holds the same images as in one process (byte-identical soft labels).
PREDICT_BATCH = 512


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).float().unsqueeze(1).to(device)
        out.append(model(x).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def accuracy(model: nn.Module, data: FaceSet) -> float:
    """Top-1 accuracy on ``data``. Under torchrun each rank predicts its own block of rows (no sample twice, none
    left out) and the correct counts are summed: a collective, every rank calls it."""
    lo, hi = distributed.shard_bounds(len(data), PREDICT_BATCH)
    correct = float((predict_logits(model, data.images[lo:hi]).argmax(1) == data.targets[lo:hi]).sum()) \
        if hi > lo else 0.0
    total_correct, total = distributed.all_reduce_sum([correct, hi - lo]).tolist()
    return total_correct / total if total else float("nan")


#: Config fields that do not change what is trained: a run may resume with another thread count, and a time
#: slice of a run (``stop_after_epoch``) resumes into the rest of it. (How many processes train is not in the
#: config at all: a run resumes with any number.)
RESUME_FREE = ("threads", "stop_after_epoch")


def _same_run(saved: dict, current: dict) -> bool:
    return ({k: v for k, v in saved.items() if k not in RESUME_FREE}
            == {k: v for k, v in current.items() if k not in RESUME_FREE})


def _log(out_dir: Path, text: str) -> None:
    if not distributed.context().main:
        return
    print(text, flush=True)
    with open(out_dir / "train.log", "a") as fh:
        fh.write(text + "\n")


def _default_layout(model: nn.Module) -> nn.Module:
    """``model`` on the CPU in the default (contiguous) layout, as pruning and export expect it."""
    return model.to("cpu", memory_format=torch.contiguous_format)


def epoch_seeds(seed: int, epoch: int, rank: int) -> tuple[int, int]:
    """(augmentation, dropout) seeds for one rank's epoch. Derived rather than carried from epoch to epoch, so a
    checkpoint holds no generator state and a run resumes with any number of processes."""
    aug, drop = np.random.SeedSequence([seed, epoch, rank]).generate_state(2)
    return int(aug), int(drop)


def rank_samples(sampler: DistributedSampler, n: int, ctx: distributed.Context) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's sample order for the sampler's epoch, and which entries are real samples.

    DistributedSampler deals a seeded permutation of the ``n`` samples round-robin to the ranks (rank r gets
    positions r, r+W, r+2W, ...) after padding it to a multiple of W with its own first entries; positions at or
    past ``n`` are those repeats. So the step-k batches of all ranks together are exactly positions
    [kB, (k+1)B) of the permutation: the batch one process would take."""
    order = torch.tensor(list(sampler), dtype=torch.long)
    position = ctx.rank + ctx.world * torch.arange(len(order))
    return order, position < n


def fit(model: nn.Module, train: FaceSet, val: FaceSet, cfg: TrainConfig, out_dir: str | Path,
        soft_targets: np.ndarray | None = None, tag: str = "train") -> dict:
    """Train ``model`` in place and leave the best-on-``val`` weights in it (on the CPU).

    ``soft_targets``: teacher probabilities [len(train), classes] (NaN rows = no teacher opinion, hard loss
    only). Writes ``checkpoint.pt`` (resume), ``best.pt`` (whole model), ``history.json``, ``train.log``.
    Returns the history dict; with ``cfg.stop_after_epoch`` reached early it holds ``stopped_after_epoch`` and
    the model keeps its last weights.

    Under ``torchrun`` every process calls this with the same arguments (see :mod:`edgefer.compile.distributed`): each
    takes ``batch_size / processes`` samples per step, DistributedDataParallel averages the gradients, and the
    loss is scaled so that each step equals the single-process step on the same global batch; the learning-rate
    schedule counts the same steps. Rank 0 alone writes files.
    """
    ctx = distributed.context()
    if cfg.batch_size % ctx.world:
        raise ValueError(f"batch size {cfg.batch_size} does not split evenly over {ctx.world} processes: choose a "
                         f"global batch size that is a multiple of the number of processes")
    out_dir = Path(out_dir)
    if ctx.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    device = ctx.device

    n = len(train)
    per_rank = cfg.batch_size // ctx.world
    steps = math.ceil(n / cfg.batch_size)  # = ceil(ceil(n / W) / per_rank): the same on every rank
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    sampler = DistributedSampler(train.targets, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=cfg.seed)
    # channels_last: oneDNN's convolutions train faster in it on x86 CPUs; the caller gets its model back in the
    # default layout (_default_layout), as pruning and export expect.
    model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps,
                                                pct_start=0.15)
    history: dict = {"tag": tag, "config": cfg.model_dump(), "epochs": []}
    best_acc, start_epoch = -1.0, 0

    ckpt_path = out_dir / "checkpoint.pt"
    # Rank 0 reads and sends: the other ranks (other machines) need no copy of the run folder.
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False) \
        if ctx.main and ckpt_path.is_file() else None
    ckpt = distributed.broadcast(ckpt)
    if ckpt is not None:
        if _same_run(ckpt["config"], cfg.model_dump()):
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            history, best_acc, start_epoch = ckpt["history"], ckpt["best_acc"], ckpt["epoch"] + 1
            history["config"] = cfg.model_dump()
            _log(out_dir, f"[{tag}] resumed after epoch {ckpt['epoch'] + 1}/{cfg.epochs} (saved by "
                          f"{ckpt.get('processes', 1)} process(es), now {ctx.world})")
        else:
            _log(out_dir, f"[{tag}] {ckpt_path} has another config; starting afresh")
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if ctx.world > 1 else model

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
        net.train()
        t0 = time.monotonic()
        sampler.set_epoch(epoch)
        order, real = rank_samples(sampler, n, ctx)
        aug_seed, dropout_seed = epoch_seeds(cfg.seed, epoch, ctx.rank)
        gen = torch.Generator().manual_seed(aug_seed)
        torch.manual_seed(dropout_seed)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        bar = tqdm(range(steps), desc=f"{tag} {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=None if ctx.main else True)
        for step in bar:
            idx = order[step * per_rank:(step + 1) * per_rank]
            keep = real[step * per_rank:(step + 1) * per_rank]
            in_step = min(cfg.batch_size, n - step * cfg.batch_size)  # real samples in this step, all ranks
            x = augment_batch(images[idx], augment, gen).to(device, memory_format=torch.channels_last)
            logits = net(x)
            sw = weights[idx].to(device) if weights is not None else None
            hard = targets[idx].to(device)
            if soft_all is None:
                per_sample = sample_losses(logits, hard, None, cfg, sample_weight=sw)
            else:
                per_sample = sample_losses(logits, hard, soft_all[idx].to(device), cfg, has_soft[idx].to(device), sw)
            batch_sum = (per_sample * keep.to(device)).sum()  # the sampler's padding repeats count for nothing
            # DDP averages the ranks' gradients, so this scale makes the step the mean over the global batch.
            loss = batch_sum * (ctx.world / in_step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += batch_sum.detach()
            seen += int(keep.sum())
            if ctx.main:
                bar.set_postfix(loss=f"{float(loss_sum) / max(seen, 1):.3f}")
        total_loss, total_seen = distributed.all_reduce_sum([float(loss_sum), seen]).tolist()
        val_acc = accuracy(model, val)
        record = {"epoch": epoch + 1, "loss": total_loss / max(total_seen, 1), "val_acc": val_acc,
                  "lr": sched.get_last_lr()[0], "seconds": time.monotonic() - t0, "processes": ctx.world}
        history["epochs"].append(record)
        improved = val_acc > best_acc
        if improved:
            best_acc = val_acc
        if ctx.main:
            if improved:
                torch.save(_default_layout(copy.deepcopy(model)), out_dir / "best.pt")
            _log(out_dir, f"[{tag}] epoch {epoch + 1}/{cfg.epochs} loss {record['loss']:.4f} "
                          f"val_acc {val_acc:.4f} (best {best_acc:.4f}) {record['seconds']:.0f}s")
            torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "history": history, "best_acc": best_acc, "epoch": epoch,
                        "config": cfg.model_dump(), "processes": ctx.world}, ckpt_path.with_suffix(".tmp"))
            ckpt_path.with_suffix(".tmp").replace(ckpt_path)
            (out_dir / "history.json").write_text(json.dumps(history, indent=1))
        if cfg.stop_after_epoch and epoch + 1 == cfg.stop_after_epoch < cfg.epochs:
            _log(out_dir, f"[{tag}] stopped after epoch {epoch + 1}/{cfg.epochs} (stop_after_epoch); the same "
                          "command without it resumes")
            history["stopped_after_epoch"] = epoch + 1
            distributed.barrier()
            _default_layout(model)
            return history

    distributed.barrier()  # best.pt is complete
    best_state = torch.load(out_dir / "best.pt", map_location="cpu", weights_only=False).state_dict() \
        if ctx.main else None
    model.load_state_dict(distributed.broadcast(best_state))
    _default_layout(model)
    history["best_val_acc"] = best_acc
    if ctx.main:
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    distributed.barrier()
    return history
