"""One rank of tests/test_ddp.py, started by ``python -m torch.distributed.run``: ARGS = CSV TEACHER_OUT FIT_OUT.

1. ``edgefer teacher --train micro`` through the CLI's own ``main``, resuming a run that one process started;
2. :func:`edgefer.compile.train.fit` on a net without BatchNorm or dropout, augmentation off, stopping after epoch 2
   of 3, for the exact comparison with one process (``equivalence_setup`` builds the same inputs on both sides).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from edgefer.compile.augment import AugmentConfig
from edgefer.compile.data import FaceSet, load_dataset
from edgefer.compile.train import TrainConfig

#: Every random choice of augment_batch switched off: each rank then sees exactly the pixels one process sees.
NO_AUGMENT = AugmentConfig(flip=0, rotate_deg=0, scale=0, shift=0, brightness=0, contrast=0, gamma=0, noise=0,
                           blur=0, occlusion=0)
#: An odd training set: two ranks get 151 positions each, one of them the sampler's padding repeat.
EQUIVALENCE_ROWS = 301
TEACHER_ARGS = ["--train", "micro", "--epochs", "2", "--batch-size", "64", "--lr", "0.05", "--threads", "1"]


class PlainConvNet(nn.Module):
    """BatchNorm normalises by per-rank batch statistics and dropout draws per rank, so a data-parallel run
    equals one process only without them: this net has neither."""

    def __init__(self, classes: int = 7) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x / 255.0 - 0.5), 1))


def equivalence_setup(csv: str) -> tuple[nn.Module, FaceSet, FaceSet, np.ndarray, TrainConfig]:
    """(model, train, val, soft targets with some rows lacking a teacher, config without stop_after_epoch)."""
    train = load_dataset(csv, "Training").subset(np.arange(EQUIVALENCE_ROWS))
    val = load_dataset(csv, "PublicTest")
    soft = np.full((len(train), 7), 0.4 / 7, dtype=np.float32)
    soft[np.arange(len(train)), train.targets] += 0.6
    soft[::7] = np.nan
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=3, batch_size=64, lr=0.05, threads=1, alpha=0.5, temperature=2.0, class_balance=0.5,
                      augment=NO_AUGMENT)
    return PlainConvNet(), train, val, soft, cfg


def main(csv: str, teacher_out: str, fit_out: str) -> None:
    from edgefer.compile.train import fit
    from edgefer.edge.cli import main as edgefer

    if edgefer(["teacher", "--data", csv, "--out", teacher_out, *TEACHER_ARGS]) != 0:
        raise SystemExit("edgefer teacher failed")
    model, train, val, soft, cfg = equivalence_setup(csv)
    fit(model, train, val, cfg.model_copy(update={"stop_after_epoch": 2}), fit_out, soft_targets=soft)


if __name__ == "__main__":
    import ddp_worker  # so that best.pt pickles the net as ddp_worker.PlainConvNet, loadable from the test

    ddp_worker.main(*sys.argv[1:])
