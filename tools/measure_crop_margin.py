"""Measure the crop margin that makes a Haar face box look like a FER2013 training crop.

FER2013 faces are already cropped. Upscaled, OpenCV's Haar detector finds a box covering a share r of each
side; the runtime must then add (1/r - 1)/2 of the box side on every side to cut the same view.

    python tools/measure_crop_margin.py PATH/fer2013.csv.gz [--split PublicTest] [--n 1500]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgefer.compile.data import load_dataset
from edgefer.edge.detectors.haar import CASCADE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--upscale", type=int, default=192)
    args = ap.parse_args()
    data = load_dataset(args.data, args.split)
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
    ratios, centres = [], []
    side = args.upscale
    for image in tqdm(data.images[: args.n], desc="haar on crops", disable=None):
        big = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        found = cascade.detectMultiScale(big, 1.05, 4, minSize=(side // 3, side // 3))
        if len(found):
            x, y, w, h = max(found, key=lambda b: b[2])
            ratios.append(w / side)
            centres.append(((x + w / 2) / side, (y + h / 2) / side))
    r = np.array(ratios)
    c = np.array(centres)
    print(f"faces found in {len(r)} of {min(args.n, len(data))} crops of {data.source}")
    q1, q3 = np.percentile(r, [25, 75])
    print(f"box side / crop side: median {np.median(r):.3f} (IQR {q1:.3f}-{q3:.3f})")
    print(f"box centre (x, y) as a share of the crop: {np.median(c[:, 0]):.3f}, {np.median(c[:, 1]):.3f}")
    print(f"crop margin per side = (1/r - 1)/2 = {(1 / np.median(r) - 1) / 2:.3f}")


if __name__ == "__main__":
    main()
