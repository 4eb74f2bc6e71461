"""Trained teachers and their equal-weight ensemble scored on the validation splits; a declared rule picks one and
its soft labels are written for the students.

    python tools/teacher_ensemble.py fer2013.csv.gz --also rafdb/ \
        --member runs/teacher-effl0-80/soft_labels.npz 80 --member runs/teacher-effl0-96/soft_labels.npz 96 \
        --out runs/teacher-chosen.soft_labels.npz [--json-out runs/teacher-choice.json]

A member is a soft-label file written by ``edgefer teacher --train ...`` (its net's checkpoint is the run folder
beside it, ``<file without .npz>/best.pt``) and the side it was trained at. Each member reads every split at its
own side (the ImageNet teachers average their mirror image themselves); the ensemble is the mean of the members'
probabilities, on the validation splits and on the training rows alike. The rule (tools/build_fer_teacher.sh):
the candidate with the highest mean of the validation splits' accuracies (FER2013 PublicTest and each ``--also``
set's slice); on a tie the one with fewer members. The test split (PrivateTest) is scored after the choice, for
the README, and plays no part in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from edgefer.compile import teacher
from edgefer.compile.data import dataset_info, load_dataset
from edgefer.compile.evaluate import classification_report
from edgefer.compile.steps import teacher_probabilities


def checkpoint_of(soft_labels: Path) -> Path:
    """The trained net behind a soft-label file: ``make_teacher`` trains in the folder named after the file."""
    path = soft_labels.with_suffix("") / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{soft_labels}: no trained net beside it (expected {path}); only a teacher trained "
                                "with 'edgefer teacher --train' can be scored here")
    return path


def score(members: list[tuple[Path, int]], data: str, also: list[str]) -> dict:
    """Accuracy and UAR of every member and of their mean on each validation split and the test split."""
    info = dataset_info(data)
    split_names = [(data, info["validation"], "validation")] + \
        [(path, dataset_info(path)["validation"], "validation") for path in also] + \
        [(data, info["test"] or info["default_test_split"], "test")]
    candidates: dict[str, dict] = {npz.parent.name: {"members": [str(npz)], "splits": {}} for npz, _ in members}
    if len(candidates) < len(members):
        raise ValueError("two members in one folder: name each teacher's soft labels <run>/soft_labels.npz")
    if len(members) > 1:
        candidates["+".join(candidates)] = {"members": [str(npz) for npz, _ in members], "splits": {}}
    nets = [torch.load(checkpoint_of(npz), weights_only=False) for npz, _ in members]
    for path, split, role in split_names:
        member_probs = []
        for net, (_, size) in zip(nets, members, strict=True):
            split_data = load_dataset(path, split, size)
            member_probs.append(teacher_probabilities(net, split_data.images))
        targets, labels, source = split_data.targets, split_data.labels, split_data.source
        candidate_probs = member_probs + ([np.mean(member_probs, axis=0)] if len(members) > 1 else [])
        for name, probs in zip(candidates, candidate_probs, strict=True):
            report = classification_report(targets, np.log(np.clip(probs, 1e-12, None)), labels)
            candidates[name]["splits"][source] = {"role": role, "accuracy": report["accuracy"],
                                                  "uar": report["uar"], "n": int(len(targets))}
    for entry in candidates.values():
        validation = [s["accuracy"] for s in entry["splits"].values() if s["role"] == "validation"]
        entry["rule_score"] = float(np.mean(validation))
    chosen = max(candidates, key=lambda n: (round(candidates[n]["rule_score"], 10), -len(candidates[n]["members"])))
    return {"candidates": candidates, "chosen": chosen,
            "rule": "highest mean of the validation splits' accuracies; on a tie, fewer members"}


def write_soft_labels(members: list[Path], out: Path, choice: dict) -> None:
    """The chosen candidate's training-row soft labels: one member's as they are, or the members' mean."""
    blobs = [np.load(path) for path in members]
    rows, labels = blobs[0]["rows"], blobs[0]["labels"]
    for path, blob in zip(members, blobs, strict=True):
        if not (np.array_equal(blob["rows"], rows) and np.array_equal(blob["labels"], labels)):
            raise ValueError(f"{path}: made for other training rows or labels than {members[0]}; the members of "
                             "an ensemble must be trained on the same data")
    probs = teacher.combine([blob["probs"] for blob in blobs])
    descriptions = [json.loads(str(blob["description"])) for blob in blobs]
    description = {"teachers": [t for d in descriptions for t in d["teachers"]], "weights": [1.0] * len(blobs),
                   "members": [str(p) for p in members], "choice": choice,
                   "report": {str(p): d["report"] for p, d in zip(members, descriptions, strict=True)},
                   "data": descriptions[0]["data"], "task": descriptions[0]["task"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"probs": probs, "rows": rows, "labels": labels, "description": np.array(json.dumps(description))}
    teacher.write_npz(out, arrays)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="fer2013.csv(.gz): its validation split counts in the rule, its test split is "
                                 "reported")
    ap.add_argument("--also", action="append", default=[], help="another data set whose validation split counts")
    ap.add_argument("--member", nargs=2, action="append", required=True, metavar=("SOFT_LABELS", "SIZE"),
                    help="a trained teacher's soft-label file and its input side")
    ap.add_argument("--out", type=Path, required=True, help="where the chosen candidate's soft labels go")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    members = [(Path(npz), int(size)) for npz, size in args.member]
    result = score(members, args.data, args.also)
    splits = list(next(iter(result["candidates"].values()))["splits"])
    print(f"{'candidate':40} " + " ".join(f"{s + ' acc':>28} {'UAR':>6}" for s in splits) + f" {'rule':>7}")
    for name, entry in result["candidates"].items():
        cells = " ".join(f"{entry['splits'][s]['accuracy']:28.4f} {entry['splits'][s]['uar']:6.4f}" for s in splits)
        print(f"{name:40} {cells} {entry['rule_score']:7.4f}" + ("  <- chosen" if name == result["chosen"] else ""))
    chosen_members = [Path(p) for p in result["candidates"][result["chosen"]]["members"]]
    write_soft_labels(chosen_members, args.out, result)
    print(f"soft labels of {result['chosen']} -> {args.out}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
