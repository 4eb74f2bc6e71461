"""Where soft-label files put their probability mass, class by class, against the hard labels: a teacher (or
crowd votes) that pulls rare classes towards common ones will cost a distilled student its recall on them.

    python tools/soft_label_stats.py fer2013.csv.gz runs/teacher/soft_labels.npz [more.npz ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgefer.compile.data import dataset_info, load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("soft_labels", nargs="+", type=Path)
    args = ap.parse_args()
    train = load_dataset(args.data, dataset_info(args.data)["train"])
    n = len(train.labels)
    print(f"{train.source}, n={len(train)}; per class: share of all mass | mass on the true class of its images")
    print(f"{'source':40} " + " ".join(f"{label:>15}" for label in train.labels))
    hard = np.bincount(train.targets, minlength=n) / len(train)
    print(f"{'hard labels':40} " + " ".join(f"{h:7.3f} | 1.000" for h in hard))
    for path in args.soft_labels:
        probs = np.load(path)["probs"]
        if len(probs) != len(train):
            raise SystemExit(f"{path}: {len(probs)} rows, the training split has {len(train)}")
        share = np.nanmean(probs, axis=0)
        own = [float(np.nanmean(probs[train.targets == c, c])) for c in range(n)]
        print(f"{str(path)[-40:]:40} " + " ".join(f"{s:7.3f} | {o:5.3f}" for s, o in zip(share, own, strict=True)))


if __name__ == "__main__":
    main()
