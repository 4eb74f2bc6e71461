"""Expression accuracy under the shifts a car camera brings (tone, blur, noise, low resolution, crop jitter,
near-infrared-like rendering): shipped int8 models against a peer, on perturbed copies of a FER2013 split.

    python tools/expression_robustness.py --data fer2013.csv.gz --peer emotion_model_quantized.tflite \
        [--model fer-student] [--model OLD.tflite] [--out reports/expression_robustness.json]

A proxy for the other data sets the model will meet, not a substitute: it shows which model holds its accuracy
when the pictures stop looking like FER2013's photos.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from edgefer.compile.data import load_dataset
from edgefer.compile.robustness import PERTURBATIONS, robustness_report
from edgefer.compile.teacher import KNOWN_WRAPS, wrapped_teacher
from edgefer.edge.bench import machine_line
from edgefer.edge.contract import load_contract
from edgefer.edge.models import Classifier, resolve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="PrivateTest")
    ap.add_argument("--model", action="append", help="shipped name or .tflite path (repeatable); default fer-student")
    ap.add_argument("--peer", help="a peer model, e.g. the fer package's emotion_model_quantized.tflite")
    ap.add_argument("--peer-convention", default="fer", choices=sorted(KNOWN_WRAPS))
    ap.add_argument("--out", type=Path, default=Path("reports/expression_robustness.json"))
    args = ap.parse_args()

    test = load_dataset(args.data, args.split)
    predictors = {}
    for name in args.model or ["fer-student"]:
        path = resolve(name)
        clf = Classifier(path)
        label = load_contract(path).name
        if label in predictors:  # e.g. a previous build of the same model, from another folder
            label = str(path)
        predictors[label] = clf.probabilities
    if args.peer:
        spec = KNOWN_WRAPS[args.peer_convention]
        predictors["peer:" + Path(args.peer).stem] = (
            lambda images: wrapped_teacher(args.peer, dataclasses.replace(test, images=images), spec))
    report = robustness_report(test, predictors, PERTURBATIONS)
    names = list(predictors)
    print(f"{test.source}, n={len(test)}, accuracy per perturbation ({machine_line()})")
    print(f"{'perturbation':16} " + " ".join(f"{n[-28:]:>28}" for n in names))
    for pert, row in report.items():
        print(f"{pert:16} " + " ".join(f"{row[n]['patch']:28.4f}" for n in names))
    mean = {n: sum(row[n]["patch"] for p, row in report.items() if p != "original") / (len(report) - 1) for n in names}
    print(f"{'mean (perturbed)':16} " + " ".join(f"{mean[n]:28.4f}" for n in names))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"split": test.source, "n": len(test), "report": report,
                                    "mean_perturbed": mean}, indent=1))


if __name__ == "__main__":
    main()
