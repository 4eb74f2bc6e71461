"""The declared selection rule applied to candidate runs: which best.pt ships.

Looks at the validation split only (FER2013: PublicTest) and never at the test split, so the test figures of the
shipped model stay a held-out measurement. The rule (edgefer.compile.balance.SELECTION_RULE): the highest mean of
accuracy and UAR, both being floors of the shipped model. With ``--incumbent RUN`` (the run shipped now, itself
a candidate) a challenger replaces it only when it beats its score by more than ``--margin``
(edgefer.compile.balance.INCUMBENT_MARGIN, declared after a 0.0002 win).

    python tools/select_student.py fer2013.csv.gz runs/a-balanced runs/b-balanced [--json-out pick.json]
        [--incumbent runs/a-balanced] [--record fer-student] [--also rafdb/]

``--record NAME``: after the chosen run was quantized and shipped as NAME, write the selection (rule, every
candidate's validation figures) into NAME's sidecar, under ``recipe.selection``; refused when NAME was not built
from the chosen run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from edgefer.compile.balance import INCUMBENT_MARGIN, SELECTION_RULE, choose_run, selection_score
from edgefer.compile.data import dataset_info, load_dataset
from edgefer.compile.evaluate import classification_report
from edgefer.compile.train import predict_logits


def select(data: str, runs: list[Path], incumbent: Path | None = None, margin: float = INCUMBENT_MARGIN,
           also: list[str] | None = None) -> dict:
    """``also``: more data sets whose validation splits score too (each its own mean of accuracy and UAR); a
    candidate's score is then the mean over the sets, so a larger set does not outweigh a smaller one."""
    sets = [(path, load_dataset(path, dataset_info(path)["validation"])) for path in [data, *(also or [])]]
    rows = []
    for run in runs:
        model = torch.load(run / "best.pt", weights_only=False)
        per_set = {}
        for _path, val in sets:
            report = classification_report(val.targets, predict_logits(model, val.images), val.labels)
            per_set[val.source] = {"accuracy": report["accuracy"], "uar": report["uar"],
                                   "score": selection_score(report["accuracy"], report["uar"])}
        first = per_set[sets[0][1].source]
        rows.append({"run": str(run), "accuracy": first["accuracy"], "uar": first["uar"],
                     "score": sum(v["score"] for v in per_set.values()) / len(per_set), "per_set": per_set})
    chosen = choose_run(rows, str(incumbent) if incumbent else None, margin)
    rule = SELECTION_RULE + (f", averaged over {', '.join(v.source for _, v in sets)}" if also
                            else f" ({sets[0][1].source})") + \
        (f"; the incumbent {incumbent} stays unless beaten by more than {margin}" if incumbent else "")
    return {"rule": rule, "split": "+".join(v.source for _, v in sets), "candidates": rows, "chosen": chosen["run"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+", type=Path, help="run folders holding best.pt")
    ap.add_argument("--also", action="append", help="another data set whose validation split scores too, e.g. a "
                                                    "RAF-DB folder (repeatable; the score is the mean over sets)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--incumbent", type=Path, help="the run shipped now (one of RUNS): kept unless beaten by more "
                                                   "than --margin")
    ap.add_argument("--margin", type=float, default=INCUMBENT_MARGIN)
    ap.add_argument("--record", metavar="MODEL", help="shipped model built from the chosen run: record the selection "
                                                      "in its sidecar")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = select(args.data, args.runs, args.incumbent, args.margin, args.also)
    print(f"rule: {result['rule']}  ({result['split']})")
    print(f"{'run':44} {'set':28} {'accuracy':>9} {'UAR':>7} {'score':>7}")
    for r in result["candidates"]:
        mark = "  <- chosen" if r["run"] == result["chosen"] else ""
        for name, v in r["per_set"].items():
            print(f"{r['run']:44} {name:28} {v['accuracy']:9.4f} {v['uar']:7.4f} {v['score']:7.4f}")
        print(f"{r['run']:44} {'score (mean over sets)':28} {'':9} {'':7} {r['score']:7.4f}{mark}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    if args.record:
        record(args.record, result)


def record(model: str, result: dict) -> None:
    from edgefer.edge.contract import load_contract, sidecar_path, write_contract
    from edgefer.edge.models import resolve

    path = resolve(model)
    contract = load_contract(path)
    built_from = contract.recipe.get("steps", [{}])[-1].get("run")
    if built_from != result["chosen"]:
        raise SystemExit(f"{sidecar_path(path)}: built from {built_from}, not from the chosen run {result['chosen']}")
    contract.recipe["selection"] = result
    write_contract(contract, sidecar_path(path))
    print(f"recorded the selection in {sidecar_path(path)}")


if __name__ == "__main__":
    main()
