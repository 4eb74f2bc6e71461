"""Data-parallel training across processes and machines: ``torchrun`` + DistributedDataParallel.

``torchrun`` starts one process per GPU (or per CPU share) and tells each its place through the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). :func:`context` reads it once and joins the process
group: NCCL when CUDA is there (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPUs. Without ``torchrun``,
or with one process, there is no group and every helper here is the plain single-process code path, so the
training verbs run unchanged both ways.

Rules the toolchain keeps (see :func:`edgefer.compile.train.fit`):

- every rank loads the same data and runs the same number of steps (collectives must pair up);
- rank 0 alone writes files (checkpoints, logs, ``history.json``, soft labels, summaries); the others read what
  they need from rank 0 through :func:`broadcast` (no shared filesystem needed to resume);
- work split by rows (:func:`map_shards`) is cut into contiguous blocks of whole batches, gathered and put back
  in row order, so its result is byte for byte what one process computes.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0


def _device(local_rank: int) -> torch.device:
    # CUDA_VISIBLE_DEVICES="" keeps a run on the CPU on a machine with GPUs.
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def context() -> Context:
    """This process's place in the run; joins the process group on the first call under ``torchrun``."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), local_rank, _device(local_rank))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=_device(0))
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world}, but this torch build has no torch.distributed")
    device = _device(local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda"
                            else None)
    atexit.register(_leave)
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, device)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float] | torch.Tensor) -> torch.Tensor:
    """Element-wise sum over all ranks (float64 on the CPU; exact for counts below 2^53)."""
    ctx = context()
    t = torch.as_tensor(values, dtype=torch.float64).detach().clone()
    if ctx.world > 1:
        # NCCL reduces tensors on the GPU only
        t = t.to(ctx.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu()


def broadcast(obj):
    """Rank 0's ``obj`` on every rank (pickled; for checkpoints and state dicts, not per-step data)."""
    if context().world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_bounds(n: int, unit: int, ctx: Context | None = None) -> tuple[int, int]:
    """This rank's contiguous rows [lo, hi) of ``n``: whole blocks of ``unit`` rows, spread as evenly as blocks
    allow (a rank may get none when there are fewer blocks than ranks)."""
    ctx = ctx or context()
    blocks = -(-n // unit)
    first, last = ctx.rank * blocks // ctx.world, (ctx.rank + 1) * blocks // ctx.world
    return min(first * unit, n), min(last * unit, n)


def map_shards(fn: Callable[[int, int], np.ndarray], n: int, unit: int) -> np.ndarray:
    """``fn(0, n)`` computed as ``fn(lo, hi)`` on each rank's shard, gathered on every rank in row order.

    The shards are whole ``unit`` blocks from row 0, so when ``fn`` works in batches of ``unit`` (or a divisor)
    each batch holds the same rows as in one process and the result is byte-identical."""
    ctx = context()
    if ctx.world == 1:
        return fn(0, n)
    lo, hi = shard_bounds(n, unit, ctx)
    local = fn(lo, hi) if hi > lo else None
    pieces: list = [None] * ctx.world
    dist.all_gather_object(pieces, (lo, hi, local))
    parts = sorted((p for p in pieces if p[2] is not None), key=lambda p: p[0])
    covered = [(a, b) for a, b, _ in parts]
    expected = [(a, b) for a, b in (shard_bounds(n, unit, Context(r, ctx.world)) for r in range(ctx.world)) if b > a]
    if covered != expected:
        raise RuntimeError(f"gathered shards {covered} do not tile rows 0..{n}: expected {expected}")
    return np.concatenate([p[2] for p in parts])
