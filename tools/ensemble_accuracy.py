"""Validation accuracy of each raw-pixel ONNX net and of their equal-weight average (an ensemble teacher).

    python tools/ensemble_accuracy.py fer2013.csv.gz runs/ensemble/*.onnx models/teachers/fer-teacher.onnx

Looks at the validation split only (FER2013: PublicTest).
"""

from __future__ import annotations

import argparse

import numpy as np

from edgefer.compile import teacher
from edgefer.compile.data import dataset_info, load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("models", nargs="+", help="ONNX nets taking raw 0..255 grey pixels (convention raw48)")
    args = ap.parse_args()
    val = load_dataset(args.data, dataset_info(args.data)["validation"])
    probs = [teacher.wrapped_teacher(m, val, teacher.KNOWN_WRAPS["raw48"]) for m in args.models]
    for path, p in zip(args.models, probs, strict=True):
        print(f"{path:50} {(p.argmax(1) == val.targets).mean():.4f}")
    mean = teacher.combine(probs, None)
    print(f"{'equal-weight average of ' + str(len(probs)):50} {(mean.argmax(1) == val.targets).mean():.4f}"
          f"  ({val.source}, n={len(val)})")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
