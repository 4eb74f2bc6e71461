"""Face-detector recall, precision, false positives and time per image on labelled photos.

Why: the runtime only sees the faces its detector finds, so a detector is chosen on measured recall at the face
sizes a cabin camera produces, not on a demo photo. Runs each detector over every photo of a folder with
``boxes.csv`` (file,x,y,w,h; every face labelled, tiny ones included), matches detections to labelled boxes
greedily by IoU, and treats labelled faces smaller than --min-face as "don't care": neither a miss when not found,
nor a false positive when found.

    python tools/detector_recall.py DATA_DIR [--min-face 24] [--iou 0.5] [--threads 1] [--json OUT]

Detectors: ``haar`` at full resolution with min_size = --min-face (so it can find the small faces counted),
``haar-320`` as the runtime's default config (frames shrunk to 320 wide, min_size 40), and ``blazeface``
short-range with its defaults. The data stays where it is: nothing is copied.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgefer.edge import detectors
from edgefer.edge.detectors import FaceDetector

#: Face size relative to the frame (min side of the face / long side of the image): a driver's face in a cabin
#: camera is typically 15-40 % of the frame; BlazeFace short-range sees the frame at 128 px.
RELATIVE_BINS = ((0.0, 0.05), (0.05, 0.1), (0.1, 0.2), (0.2, 1.01))


def detector_configs(min_face: int, threads: int) -> dict[str, dict]:
    return {
        "haar": {"type": "haar", "detect_width": 0, "min_size": min_face},
        "haar-320": {"type": "haar"},
        "blazeface": {"type": "blazeface", "threads": threads},
    }


def load_boxes(data_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """file -> labelled boxes [M, 4] as x, y, w, h, in the order of boxes.csv; and file -> each box's label.

    Labels (e.g. with_mask / without_mask) come from ``boxes_meta.csv`` when it lists the same rows, else "face".
    """
    boxes: dict[str, list[list[float]]] = defaultdict(list)
    labels: dict[str, list[str]] = defaultdict(list)
    with open(data_dir / "boxes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    meta_rows: list[dict] = []
    if (data_dir / "boxes_meta.csv").is_file():
        with open(data_dir / "boxes_meta.csv", newline="") as f:
            meta_rows = list(csv.DictReader(f))
    same = len(meta_rows) == len(rows) and all(m["file"] == r["file"] for m, r in zip(meta_rows, rows, strict=True))
    for i, row in enumerate(rows):
        boxes[row["file"]].append([float(row[k]) for k in ("x", "y", "w", "h")])
        labels[row["file"]].append((meta_rows[i].get("label") or "face") if same else "face")
    return {file: np.asarray(b, dtype=np.float32).reshape(-1, 4) for file, b in boxes.items()}, labels


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU [N, M] of x, y, w, h boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    a0, a1 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b0, b1 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.prod(np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None), axis=2)
    union = a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(dets: np.ndarray, gts: np.ndarray, threshold: float) -> np.ndarray:
    """For each detection the index of the labelled box it matches, or -1: highest IoU pairs first, one to one."""
    match = np.full(len(dets), -1, dtype=np.int64)
    iou = iou_matrix(dets, gts)
    if iou.size == 0:
        return match
    used_gt = np.zeros(len(gts), bool)
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        d, g = np.unravel_index(flat, iou.shape)
        if iou[d, g] < threshold:
            break
        if match[d] < 0 and not used_gt[g]:
            match[d], used_gt[g] = g, True
    return match


class Tally:
    """Counts for one detector."""

    def __init__(self, min_face: int) -> None:
        self.min_face = min_face
        self.found: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # bucket -> [matched, total]
        self.tp = self.fp = self.ignored = self.images = 0
        self.seconds: list[float] = []

    def add(self, dets: np.ndarray, gts: np.ndarray, labels: list[str], frame_side: int, source: str,
            threshold: float, seconds: float) -> None:
        match = greedy_match(dets, gts, threshold)
        matched_gt = np.zeros(len(gts), bool)
        matched_gt[match[match >= 0]] = True
        min_side = gts[:, 2:].min(axis=1) if len(gts) else np.zeros(0)
        relative = min_side / frame_side
        for i, side in enumerate(min_side):
            buckets = [f">={t}px" for t in (self.min_face, 48) if side >= t]
            if side >= self.min_face:
                buckets += [f"source:{source}", f"label:{labels[i]}"]
                buckets += [f"rel:{lo:.2f}-{min(hi, 1):.2f}" for lo, hi in RELATIVE_BINS if lo <= relative[i] < hi]
            for bucket in buckets:
                self.found[bucket][0] += int(matched_gt[i])
                self.found[bucket][1] += 1
        for g in match:
            if g < 0:
                self.fp += 1
            elif min_side[g] >= self.min_face:
                self.tp += 1
            else:
                self.ignored += 1  # a "don't care" face: found, but counted neither way
        self.images += 1
        self.seconds.append(seconds)

    def recall(self, bucket: str) -> float:
        hit, total = self.found.get(bucket, (0, 0))
        return hit / total if total else float("nan")

    def summary(self) -> dict:
        return {
            "recall": {k: {"found": v[0], "labelled": v[1], "recall": v[0] / v[1] if v[1] else None}
                       for k, v in sorted(self.found.items())},
            "true_positives": self.tp, "false_positives": self.fp, "ignored_small_face_hits": self.ignored,
            "precision": self.tp / (self.tp + self.fp) if self.tp + self.fp else None,
            "false_positives_per_image": self.fp / self.images if self.images else None,
            "ms_per_image_mean": 1000 * float(np.mean(self.seconds)) if self.seconds else None,
            "ms_per_image_median": 1000 * float(np.median(self.seconds)) if self.seconds else None,
            "images": self.images,
        }


def run(data_dir: Path, min_face: int, threshold: float, threads: int, names: list[str]) -> dict:
    cv2.setNumThreads(threads)
    configs = {k: v for k, v in detector_configs(min_face, threads).items() if k in names}
    dets: dict[str, FaceDetector] = {name: detectors.create(cfg) for name, cfg in configs.items()}
    boxes, labels = load_boxes(data_dir)
    tallies = {name: Tally(min_face) for name in dets}
    for file, gts in tqdm(sorted(boxes.items()), desc="detecting", unit="img", disable=None):
        gray = cv2.imread(str(data_dir / file), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise SystemExit(f"{data_dir / file}: not a readable image")
        source = Path(file).name.split("_", 1)[0]
        for name, det in dets.items():
            start = time.perf_counter()
            found = det.detect(gray)
            seconds = time.perf_counter() - start
            found_boxes = np.asarray([d.box for d in found], np.float32).reshape(-1, 4)
            tallies[name].add(found_boxes, gts, labels[file], max(gray.shape), source, threshold, seconds)
    return {
        "data": str(data_dir), "images": len(boxes), "labelled_faces": int(sum(len(b) for b in boxes.values())),
        "min_face": min_face, "iou": threshold, "threads": threads,
        "detectors": {name: {"config": dets[name].config.model_dump(), **tallies[name].summary()} for name in dets},
        "_tallies": tallies,
    }


def print_report(result: dict) -> None:
    tallies: dict[str, Tally] = result.pop("_tallies")
    m = result["min_face"]
    print(f"{result['data']}: {result['images']} images, {result['labelled_faces']} labelled faces; "
          f"match IoU >= {result['iou']}; faces < {m} px are don't-care; {result['threads']} thread(s)")
    for name in tallies:
        print(f"  {name}: {json.dumps(result['detectors'][name]['config'])}")
    head = f"| detector | recall >={m}px | recall >=48px | precision | FP/image | ms/image (mean, median) |"
    print(head)
    print("|---|---|---|---|---|---|")
    for name, t in tallies.items():
        s = result["detectors"][name]
        n_m, n_48 = t.found.get(f">={m}px", [0, 0]), t.found.get(">=48px", [0, 0])
        print(f"| {name} | {t.recall(f'>={m}px'):.3f} ({n_m[0]}/{n_m[1]}) | {t.recall('>=48px'):.3f} "
              f"({n_48[0]}/{n_48[1]}) | {s['precision'] or 0:.3f} ({t.tp}/{t.tp + t.fp}) | "
              f"{s['false_positives_per_image']:.3f} | {s['ms_per_image_mean']:.1f}, {s['ms_per_image_median']:.1f} |")
    sources = sorted({k for t in tallies.values() for k in t.found if k.startswith(("source:", "label:"))})
    bins = [f"rel:{lo:.2f}-{min(hi, 1):.2f}" for lo, hi in RELATIVE_BINS]
    print(f"\nRecall of faces >= {m} px by source, by label, and by face size relative to the image (min face "
          "side / long image side)")
    columns = sources + [b.split(":", 1)[1] for b in bins]
    print("| detector | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    first = next(iter(tallies.values()))
    print("| (labelled) | " + " | ".join(str(first.found.get(k, [0, 0])[1]) for k in sources + bins) + " |")
    for name, t in tallies.items():
        print(f"| {name} | " + " | ".join(f"{t.recall(k):.3f}" for k in sources + bins) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder with boxes.csv and the images it names")
    ap.add_argument("--min-face", type=int, default=24, help="smaller labelled faces are don't-care (pixels)")
    ap.add_argument("--iou", type=float, default=0.5, help="IoU for a detection to match a labelled face")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV and TFLite threads")
    ap.add_argument("--detectors", default="haar,haar-320,blazeface",
                    help=f"comma-separated, from {', '.join(detector_configs(24, 1))}")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    unknown = set(names) - set(detector_configs(args.min_face, args.threads))
    if unknown:
        raise SystemExit(f"unknown detector(s): {', '.join(sorted(unknown))}")
    result = run(args.data, args.min_face, args.iou, args.threads, names)
    print_report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
