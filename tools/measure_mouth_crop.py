"""How large a mouth crop the yawn model should see, in inter-ocular distances (IOD): chosen on val groups.

The runtime cuts the yawn model's input around the mouth keypoint (BlazeFace; the Haar box's guessed keypoints
as the fallback) with side = k * IOD, eye line levelled (edge/monitor.py). Too small and a wide-open mouth and
the dropped chin leave the crop; too large and the crop is mostly cheeks, collar and cabin. This tool cuts the
YawDD frames at several k, trains the same small student on the train groups for each (hard labels, the yawn
augmentation preset, two seeds, one thread) and reports accuracy on the val groups. The test groups are not
read. The chosen k goes into compile/data.py (YAWN_CROP_IOD) and, through it, into the model's sidecar.

    PATH=.venv/bin:$PATH python tools/measure_mouth_crop.py ../shared/data/yawn --json runs/yawn/crop_scale.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from edgefer.compile import nets  # noqa: E402
from edgefer.compile.augment import PRESETS  # noqa: E402
from edgefer.compile.data import YAWN_SIZE, read_yawn_frames, yawn_csv_path, yawn_split  # noqa: E402
from edgefer.compile.train import TrainConfig, fit, predict_logits  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="yawn folder holding frames.csv")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.2, 1.6, 2.0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--arch", default="yawn-student")
    ap.add_argument("--runs", type=Path, default=Path("runs/yawn/crop-scale"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    csv_path = yawn_csv_path(args.data)
    if csv_path is None:
        ap.error(f"{args.data}: no frames.csv")
    rows = []
    for k in args.scales:
        frames = read_yawn_frames(csv_path, YAWN_SIZE, k)
        train, val = yawn_split(frames, "train"), yawn_split(frames, "val")
        accs = []
        for seed in range(args.seeds):
            cfg = TrainConfig(epochs=args.epochs, lr=0.05, batch_size=64, alpha=0.0, threads=1, seed=seed,
                              augment=PRESETS["yawn"])
            torch.manual_seed(seed)
            model = nets.build(args.arch, len(train.labels))
            history = fit(model, train, val, cfg, args.runs / f"k{k}-s{seed}", tag=f"k={k} seed {seed}")
            last = float(np.mean([e["val_acc"] for e in history["epochs"][-5:]]))
            final = float((predict_logits(model, val.images).argmax(1) == val.targets).mean())
            accs.append({"seed": seed, "best_val": history["best_val_acc"], "mean_last5_val": last,
                         "best_epoch_val": final})
        row = {"k": k, "n_train": len(train), "n_val": len(val), "runs": accs,
               "mean_last5_val": float(np.mean([a["mean_last5_val"] for a in accs])),
               "mean_best_val": float(np.mean([a["best_val"] for a in accs]))}
        rows.append(row)
        print(f"k={k:.2f} x IOD: val (mean of last 5 epochs, {args.seeds} seeds) {row['mean_last5_val']:.4f}, "
              f"best {row['mean_best_val']:.4f}", flush=True)
    best = max(rows, key=lambda r: r["mean_last5_val"])
    print(f"best k = {best['k']} x IOD (by the mean of the last 5 epochs on val, less noisy than the best epoch)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "best_k": best["k"], "arch": args.arch,
                                         "epochs": args.epochs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
