"""How big an eye crop must be, relative to the inter-ocular distance (IOD), to look like a CEW patch.

CEW patches are 24x24 crops centred on one eye, cut from LFW faces at a scale the dataset does not state. The
runtime cuts eye crops around BlazeFace's eye keypoints with side = k * IOD; this tool finds k: on real photos
with large frontal faces it cuts crops for a range of k, averages them (after per-crop normalisation), and
compares that mean with the mean CEW open-eye patch (normalised cross-correlation) and the mean pupil position
and eye width. It also reports where BlazeFace's keypoints sit inside Haar boxes (the fallback geometry).

    python tools/measure_eye_crop.py --cew ../shared/data/eyes/cew --photos ../shared/data/faces/images \
        ../shared/data/yawn/no_yawn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgefer.edge import detectors
from edgefer.edge.crop import crop_rotated, eye_line
from edgefer.edge.sources.folder import list_images


def normalise(patch: np.ndarray) -> np.ndarray:
    p = patch.astype(np.float32)
    return (p - p.mean()) / (p.std() + 1e-6)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    return float((normalise(a) * normalise(b)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cew", required=True, type=Path)
    ap.add_argument("--photos", nargs="+", required=True, type=Path)
    ap.add_argument("--min-iod", type=float, default=30.0, help="only faces with at least this IOD (px)")
    ap.add_argument("--max-faces", type=int, default=1500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    open_files = [p for d in ("openLeftEyes", "openRightEyes") for p in sorted((args.cew / d).glob("*.jpg"))]
    cew = np.mean([normalise(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in open_files], axis=0)

    blaze = detectors.create({"type": "blazeface"})
    haar = detectors.create({"type": "haar", "detect_width": 0})
    scales = np.round(np.arange(0.35, 1.21, 0.05), 2)
    sums = {float(k): np.zeros((24, 24), np.float64) for k in scales}
    per_crop = {float(k): [] for k in scales}
    in_box: list[dict[str, tuple[float, float]]] = []
    faces = 0
    images = [p for root in args.photos for p in list_images(root)]
    for path in tqdm(images, desc="photos"):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        for det in blaze.detect(gray):
            iod, angle = eye_line(det.keypoints)
            if iod < args.min_iod:
                continue
            faces += 1
            for k in scales:
                for eye in ("right_eye", "left_eye"):
                    patch = crop_rotated(gray, det.keypoints[eye], k * iod, angle, (24, 24))
                    if eye == "left_eye":  # mirror so both eyes share one orientation, as flips do in training
                        patch = patch[:, ::-1]
                    sums[float(k)] += normalise(patch)
                    per_crop[float(k)].append(ncc(patch, cew))
            for h in haar.detect(gray):
                hx, hy, hw, hh = h.box
                cx, cy = det.keypoints["nose"]
                if hx < cx < hx + hw and hy < cy < hy + hh:
                    in_box.append({k: ((x - hx) / hw, (y - hy) / hh) for k, (x, y) in det.keypoints.items()})
                    break
        if faces >= args.max_faces:
            break
    # CEW mixes left and right eyes unmirrored; compare against the mean of the CEW patch and its mirror
    cew_sym = (cew + cew[:, ::-1]) / 2
    rows = []
    for k in scales:
        mean = sums[float(k)] / max(1, 2 * faces)
        rows.append({"k": float(k), "ncc_of_means": round(ncc((mean + mean[:, ::-1]) / 2, cew_sym), 4),
                     "mean_ncc_per_crop": round(float(np.mean(per_crop[float(k)])), 4)})
    best = max(rows, key=lambda r: r["ncc_of_means"])
    geometry = {k: tuple(round(float(np.median([g[k][i] for g in in_box])), 3) for i in (0, 1))
                for k in ("right_eye", "left_eye", "nose", "mouth")} if in_box else {}
    for r in rows:
        print(f"k={r['k']:.2f}  NCC(mean crop, mean CEW) {r['ncc_of_means']:.4f}  mean per-crop NCC "
              f"{r['mean_ncc_per_crop']:.4f}")
    print(f"faces used: {faces} (IOD >= {args.min_iod} px); best k = {best['k']:.2f} x IOD")
    print(f"BlazeFace keypoints inside Haar boxes (median x, y as box fractions, n={len(in_box)}): {geometry}")
    if args.json:
        args.json.write_text(json.dumps({"faces": faces, "rows": rows, "best_k": best["k"],
                                         "box_keypoints": geometry, "n_box": len(in_box)}, indent=1))


if __name__ == "__main__":
    main()
