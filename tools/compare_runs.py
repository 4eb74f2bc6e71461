"""Float accuracy and UAR of trained runs (their best.pt) on FER2013 splits, e.g. distilled vs no-teacher.

    python tools/compare_runs.py fer2013.csv.gz runs/s2-kd runs/s2-baseline [--splits PublicTest PrivateTest]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from compile.data import load_dataset
from compile.evaluate import classification_report
from compile.train import predict_logits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--splits", nargs="+", default=["PublicTest", "PrivateTest"])
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits = {name: load_dataset(args.data, name) for name in args.splits}
    results = {}
    print(f"{'run':44} " + " ".join(f"{s + ' acc':>16} {'UAR':>6}" for s in args.splits))
    for run in args.runs:
        model = torch.load(run / "best.pt", weights_only=False)
        row = {}
        for name, data in splits.items():
            report = classification_report(data.targets, predict_logits(model, data.images), data.labels)
            row[name] = {"accuracy": report["accuracy"], "uar": report["uar"]}
        results[str(run)] = row
        print(f"{str(run):44} " + " ".join(f"{row[s]['accuracy']:16.4f} {row[s]['uar']:6.4f}" for s in args.splits))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
