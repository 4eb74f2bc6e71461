"""Float accuracy and UAR of trained runs (their best.pt) on FER2013 splits, e.g. distilled vs no-teacher.

    python tools/compare_runs.py fer2013.csv.gz runs/s2-kd runs/s2-baseline [--splits PublicTest PrivateTest]
        [--votes fer2013new.csv] [--also rafdb/] [--size 80]

``--votes``: also score each split against the FER+ relabelling of the same faces (majority of 10 annotators;
faces without a clear majority on a FER2013 class are left out), a second labelling that no run chose on.
``--also DIR``: add another data set's validation split (e.g. the RAF-DB slice); ``--size``: read every split at
that side (a teacher trained at 80 px); runs' own flip averaging (ImageNet teachers) is part of their output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from edgefer.compile.data import dataset_info, ferplus_majority, load_dataset, read_ferplus_votes
from edgefer.compile.evaluate import classification_report
from edgefer.compile.train import predict_logits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--splits", nargs="+", default=["PublicTest", "PrivateTest"])
    ap.add_argument("--votes", type=Path, help="FER+ vote file (fer2013new.csv): add columns scored on its labels")
    ap.add_argument("--also", action="append", default=[], help="another data set: score its validation split")
    ap.add_argument("--size", type=int, help="image side to read every split at (default: each format's own)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    splits = {name: load_dataset(args.data, name, args.size) for name in args.splits}
    for path in args.also:
        val = load_dataset(path, dataset_info(path)["validation"], args.size)
        splits[val.source] = val
    relabels = {}
    if args.votes:
        votes = read_ferplus_votes(args.votes)
        relabels = {name: ferplus_majority(votes[splits[name].rows], splits[name].labels) for name in args.splits}
    columns = list(splits) + [f"{name} FER+" for name in relabels]
    results = {}
    print(f"{'run':44} " + " ".join(f"{c + ' acc':>20} {'UAR':>6}" for c in columns))
    for run in args.runs:
        model = torch.load(run / "best.pt", weights_only=False)
        row = {}
        for name, data in splits.items():
            logits = predict_logits(model, data.images)
            report = classification_report(data.targets, logits, data.labels)
            row[name] = {"accuracy": report["accuracy"], "uar": report["uar"]}
            if name in relabels:
                targets, valid = relabels[name]
                report = classification_report(targets[valid], logits[valid], data.labels)
                row[f"{name} FER+"] = {"accuracy": report["accuracy"], "uar": report["uar"], "n": int(valid.sum())}
        results[str(run)] = row
        print(f"{str(run):44} " + " ".join(f"{row[c]['accuracy']:20.4f} {row[c]['uar']:6.4f}" for c in columns))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
