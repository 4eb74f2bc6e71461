"""End-to-end eye-state rate on whole frames: face found AND eye state right, through the real runtime.

The only whole frames here with known eye state are the demo's (a real photo, Grace Hopper, in a synthetic
cabin, with lids painted shut between 8.0 and 11.5 s of its script, day and near-infrared-like night light),
so this measures the chain (detector -> keypoints -> 0.55 IOD eye crops -> int8 model -> calibrated openness),
not the model on real closed eyes; the model on real eyes is measured on unseen CEW faces.

    python tools/end_to_end_eyes.py [--fps 15] [--detector blazeface|haar]
"""

from __future__ import annotations

import argparse
import json

from edgefer.edge import config
from edgefer.edge.loop import run
from edgefer.edge.outputs import Dispatcher
from edgefer.edge.sources.demo import SCRIPT_LENGTH_S, truth_at


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--detector", default="blazeface")
    args = ap.parse_args()
    cfg = config.validate({"privacy": {"block_network": False}, "detector": {"type": args.detector},
                           "source": {"type": "demo", "fps": args.fps, "duration_s": SCRIPT_LENGTH_S}})
    rows = []
    run(cfg, dispatcher=Dispatcher([]), on_frame=lambda r: rows.append(r))
    stats: dict[str, dict[str, int]] = {}
    for r in rows:
        truth = truth_at(r.frame.ts)
        if truth.face == "hidden":
            continue
        key = f"{truth.light}/{truth.eyes}" + ("" if truth.look == "road" else f"/{truth.look}")
        s = stats.setdefault(key, {"frames": 0, "face": 0, "right": 0})
        s["frames"] += 1
        if r.driver is None or r.driver.eyes_open is None:
            continue
        s["face"] += 1
        closed = r.signals.get("eye_closure") == 1.0
        s["right"] += closed == (truth.eyes == "closed")
    total = {k: sum(s[k] for s in stats.values()) for k in ("frames", "face", "right")}
    for key, s in sorted(stats.items()) + [("all", total)]:
        print(f"{key:12s} frames {s['frames']:4d}  face found {s['face'] / s['frames']:.3f}  "
              f"face found and eye state right {s['right'] / s['frames']:.3f}")
    print(json.dumps({"detector": args.detector, "fps": args.fps, "stats": stats, "all": total}))


if __name__ == "__main__":
    main()
