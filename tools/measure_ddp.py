"""Wall time of one short, fixed training run in one process against two (torchrun, gloo, CPU).

Runs ``edgefer distill`` (hard labels, the task's default student unless --arch) for one epoch capped at
``--steps`` steps of the global batch, as: 1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread
(torchrun --standalone). Every layout trains on the same global batches with the same learning rate. Prints, per
layout, the whole command's wall time (imports, data loading, process group start included) and the epoch's own
seconds from history.json (the training steps plus the validation pass), and the load average around it: on a
shared machine the figures move with the neighbours.

Usage: python tools/measure_ddp.py /work/shared/data/fer2013/fer2013.csv.gz [--steps 40] [--out reports/ddp_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYOUTS = (("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def run_layout(data: str, arch: str, steps: int, batch: int, processes: int, threads: int, out: Path) -> dict:
    verb = ["distill", "--data", data, "--arch", arch, "--out", str(out), "--epochs", "1", "--batch-size",
            str(batch), "--max-steps-per-epoch", str(steps), "--threads", str(threads)]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] \
        if processes > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": ""}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, *launcher, "-m", "edgefer", *verb], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{processes} process(es) failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    epoch = json.loads((out / "history.json").read_text())["epochs"][0]
    return {"processes": processes, "threads_each": threads, "command_wall_s": round(wall, 2),
            "epoch_s": round(epoch["seconds"], 2), "loss": epoch["loss"], "val_acc": epoch["val_acc"],
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="fer2013.csv(.gz)")
    ap.add_argument("--arch", default="student")
    ap.add_argument("--steps", type=int, default=40, help="training steps of the global batch")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--out", help="write the figures here as JSON")
    args = ap.parse_args()
    # The first read of a CSV parses it into the ~/.cache npz (~15 s): done once here, outside every timing.
    subprocess.run([sys.executable, "-c", f"from edgefer.compile.data import load_dataset; load_dataset({args.data!r}, "
                    "'Training')"], check=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, processes, threads in LAYOUTS:
            row = run_layout(args.data, args.arch, args.steps, args.batch_size, processes, threads,
                             Path(tmp) / name.replace(" ", "_"))
            rows.append({"layout": name, **row})
            print(f"{name:24s} command {row['command_wall_s']:6.1f} s  epoch {row['epoch_s']:6.1f} s  "
                  f"loss {row['loss']:.4f}  val_acc {row['val_acc']:.4f}  load {row['load_average_1min']}",
                  flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_name()}", "arch": args.arch,
              "steps": args.steps, "global_batch": args.batch_size, "data": args.data,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "layouts": rows}
    print(result["machine"])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
