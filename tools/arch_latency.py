"""Per-face int8 latency of candidate student architectures (untrained weights: latency does not depend on
them), optionally pruned, against a peer tflite, one thread, timed interleaved. Use it to pick an architecture
and pruning ratio that meet a speed target before spending hours training.

    python tools/arch_latency.py --peer emotion_model_quantized.tflite student student-s2 student-s2:0.3 [--count]

``--count`` adds instructions per face under valgrind's callgrind (tools/count_instructions.py's method): repeatable
on a busy machine, and XNNPACK's AVX2 path, which a host without VNNI runs; timed ratios flatter on VNNI hosts.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgefer.compile import nets
from edgefer.compile.prune import prune_channels
from edgefer.compile.quantize import convert_int8, export_onnx
from edgefer.edge.bench import machine_line
from edgefer.edge.latency import compare_latency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", help="ARCH or ARCH:PRUNE_RATIO, ARCH from compile/nets.py")
    ap.add_argument("--peer", required=True)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--count", action="store_true", help="also count instructions per face under callgrind")
    args = ap.parse_args()
    counts: dict[str, float] = {}
    calib = (np.random.default_rng(0).random((64, 48, 48)) * 255).astype(np.float32)
    paths, shapes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for cand in args.candidates:
            arch, _, ratio = cand.partition(":")
            torch.manual_seed(0)
            model = nets.build(arch)
            if ratio:
                prune_channels(model, float(ratio))
            shapes[cand] = nets.count_macs(model)
            onnx_path = export_onnx(model, Path(tmp) / f"{cand.replace(':', '_')}.onnx")
            paths[cand] = str(convert_int8(onnx_path, calib, Path(tmp) / cand.replace(":", "_"))["int8"])
        paths["peer"] = args.peer
        result = compare_latency(paths, threads=1, rounds=args.rounds)
        if args.count:
            from count_instructions import INVOKES, counted  # tools/ is this script's folder

            for name, path in paths.items():
                counts[name] = counted(["model", path], *INVOKES, tmp)["per_unit"]
    peer = result["peer"]["median_ms"]
    print(f"one thread, median of {args.rounds} interleaved runs, on {machine_line()}")
    print(f"{'candidate':24} {'MACs':>8} {'params':>8} {'ms/face':>8} {'vs peer':>8}"
          + (f" {'M instr':>8} {'vs peer':>8}" if counts else ""))
    for name, r in result.items():
        macs, params = shapes.get(name, (0, 0))
        line = f"{name:24} {macs / 1e6:7.2f}M {params:8d} {r['median_ms']:8.4f} {peer / r['median_ms']:7.2f}x"
        if counts:
            line += f" {counts[name] / 1e6:8.3f} {counts['peer'] / counts[name]:7.2f}x"
        print(line)


if __name__ == "__main__":
    main()
