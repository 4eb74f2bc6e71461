"""Data-parallel training: two CPU processes with gloo, started by torchrun, against one process.

One launch (``python -m torch.distributed.run --standalone``: the rendezvous binds port 0, so the port is free by
construction) runs tests/ddp_worker.py on 2 ranks, one thread each. What it checks:

- ``edgefer teacher --train`` started in one process resumes in two, trains on, writes one log line per epoch and
  a soft-label file whose bytes equal the file one process makes from the same teacher weights;
- its checkpoint and best model load in a single process;
- a net without BatchNorm and dropout, augmentation off, trained 2 epochs by two processes then resumed for the
  third in one, matches three epochs in one process with the same global batch of 64 (peak lr 0.05): the loss
  to a relative 1e-5 every epoch, the weights to 2e-5. What remains is float summation order (the gradient
  all-reduce adds two half-batch sums), grown by training: seen here 1.3e-7 relative in the loss and 9e-7 in
  the weights (at peak lr 0.2 the weights drift apart to 5e-5 in the same 15 steps, so the lr is kept low).
  With BatchNorm the two layouts differ by design (per-rank batch statistics; torch's SyncBatchNorm runs on GPUs
  only), so the real nets are checked for progress, resumption and byte-identical soft labels, not equality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_worker import EQUIVALENCE_ROWS, TEACHER_ARGS, equivalence_setup

from edgefer.compile import distributed
from edgefer.compile.train import rank_samples

HERE = Path(__file__).parent
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 2e-5


@pytest.fixture(scope="module")
def ddp_run(fer_files, tmp_path_factory) -> dict:
    from edgefer.edge.cli import main

    root = tmp_path_factory.mktemp("ddp")
    paths = {"csv": fer_files["csv"], "soft": root / "teacher" / "soft_labels.npz", "fit": root / "fit"}
    # One process trains the teacher's first epoch of two and stops; two processes resume it.
    assert main(["teacher", "--data", str(paths["csv"]), "--out", str(paths["soft"]), *TEACHER_ARGS,
                 "--stop-after-epoch", "1"]) == 0
    assert not paths["soft"].exists()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(HERE / "ddp_worker.py"), str(paths["csv"]), str(paths["soft"]), str(paths["fit"])],
                          env=env, cwd=HERE.parent, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return paths


def test_a_run_started_in_one_process_resumes_in_two_and_trains_on(ddp_run):
    run = ddp_run["soft"].with_suffix("")
    history = json.loads((run / "history.json").read_text())
    assert [e["processes"] for e in history["epochs"]] == [1, 2]
    first, second = history["epochs"]
    assert second["loss"] < first["loss"]
    log = (run / "train.log").read_text()
    assert "resumed after epoch 1/2 (saved by 1 process(es), now 2)" in log
    assert log.count("epoch 2/2 loss") == 1  # rank 0 alone writes


def test_the_checkpoint_and_best_model_load_in_a_single_process(ddp_run, fer_files):
    from edgefer.compile import nets
    from edgefer.compile.data import load_dataset
    from edgefer.compile.train import accuracy

    run = ddp_run["soft"].with_suffix("")
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["processes"] == 2 and ckpt["epoch"] == 1
    fresh = nets.build("micro")
    fresh.load_state_dict(ckpt["model"])  # plain keys: no DDP "module." prefix
    best = torch.load(run / "best.pt", weights_only=False)
    val = load_dataset(fer_files["csv"], "PublicTest")
    assert accuracy(best, val) == pytest.approx(max(e["val_acc"] for e in ckpt["history"]["epochs"]))


def test_soft_labels_from_two_processes_equal_one_process_byte_for_byte(ddp_run, tmp_path):
    from edgefer.compile import steps, teacher
    from edgefer.compile.data import load_dataset

    train = load_dataset(ddp_run["csv"], "Training")
    sharded, description = teacher.load_soft_labels(ddp_run["soft"], train)
    model = torch.load(ddp_run["soft"].with_suffix("") / "best.pt", weights_only=False)
    torch.set_num_threads(1)
    single = steps.teacher_probabilities(model, train.images)
    assert sharded.dtype == single.dtype == np.float32
    assert sharded.tobytes() == single.tobytes()
    again = tmp_path / "one_process.npz"
    teacher.save_soft_labels(again, single, train, description)
    assert again.read_bytes() == ddp_run["soft"].read_bytes()


def test_two_processes_match_one_with_the_same_global_batch(ddp_run, tmp_path):
    from edgefer.compile.train import fit

    model, train, val, soft, cfg = equivalence_setup(str(ddp_run["csv"]))
    one = fit(model, train, val, cfg, tmp_path / "one", soft_targets=soft)
    model, *_ = equivalence_setup(str(ddp_run["csv"]))
    two_then_one = fit(model, train, val, cfg, ddp_run["fit"], soft_targets=soft)

    assert [e["processes"] for e in two_then_one["epochs"]] == [2, 2, 1]
    assert [e["processes"] for e in one["epochs"]] == [1, 1, 1]
    for a, b in zip(one["epochs"], two_then_one["epochs"], strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=LOSS_RTOL)
        assert abs(b["val_acc"] - a["val_acc"]) <= 1 / len(val) + 1e-12  # one near-tie may flip
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-12)
    assert one["epochs"][-1]["loss"] < one["epochs"][0]["loss"]
    last_one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["model"]
    last_two = torch.load(ddp_run["fit"] / "checkpoint.pt", weights_only=False)["model"]
    for name, w in last_one.items():
        assert torch.allclose(w, last_two[name], rtol=0, atol=WEIGHT_ATOL), name


def test_the_ranks_steps_together_are_the_one_process_batches():
    """DistributedSampler deals round-robin: step k of all ranks together is positions [kB, (k+1)B) of the
    permutation one process walks, with the padding repeats marked, for an odd set over 2 and 4 ranks."""
    from torch.utils.data.distributed import DistributedSampler

    n, batch = EQUIVALENCE_ROWS, 64
    reference = list(DistributedSampler(range(n), num_replicas=1, rank=0, seed=5))
    for world in (2, 4):
        per_rank = batch // world
        shards = [rank_samples(DistributedSampler(range(n), num_replicas=world, rank=r, seed=5), n,
                               distributed.Context(r, world)) for r in range(world)]
        for step in range(-(-n // batch)):
            part = slice(step * per_rank, (step + 1) * per_rank)
            real = sorted(int(i) for order, keep in shards for i in order[part][keep[part]])
            assert real == sorted(reference[step * batch:(step + 1) * batch])
        assert sum(int(keep.sum()) for _, keep in shards) == n


def test_shards_tile_the_rows_in_whole_blocks():
    for n, world in ((0, 2), (700, 2), (1100, 3), (5, 4)):
        bounds = [distributed.shard_bounds(n, 512, distributed.Context(r, world)) for r in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        assert all(lo % 512 == 0 for lo, hi in bounds if hi > lo)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(monkeypatch, tmp_path):
    from edgefer.compile import train as train_mod
    from edgefer.compile.train import TrainConfig

    monkeypatch.setattr(distributed, "context", lambda: distributed.Context(rank=0, world=3))
    with pytest.raises(ValueError, match="batch size 64 does not split evenly over 3 processes"):
        train_mod.fit(None, None, None, TrainConfig(batch_size=64), tmp_path)
