"""Whole-loop throughput on a video against the ``fer`` package's own per-frame API, in one run.

    pip install --no-deps fer==25.10.3 'setuptools<81'      # the peer (its API needs TensorFlow: toolchain venv)
    python tools/compare_fer_fps.py ../shared/data/video/short_hamilton_clip.mp4 [--rounds 2] [--config FILE]

Both sides decode every frame of the file themselves and are timed from the first read to the last result.
The peer runs ``FER().detect_emotions(frame)`` on every frame (Haar at full resolution + its tflite); edgefer
runs its monitor loop (``edgefer bench``'s path: detection schedule, tracking, int8 model, smoothing, alert
rules). Rounds alternate peer / edgefer so drift on a noisy machine hits both; the best round of each counts.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2

from edgefer.edge.bench import machine_line


def run_fer(video: str) -> dict:
    from fer.fer import FER

    detector = FER()
    cap = cv2.VideoCapture(video)
    frames = faces = 0
    start = time.perf_counter()
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames += 1
        faces += bool(detector.detect_emotions(image))
    seconds = time.perf_counter() - start
    return {"frames": frames, "faces": faces, "seconds": round(seconds, 3), "fps": round(frames / seconds, 1)}


def run_edgefer(video: str, config_path: str | None) -> dict:
    from edgefer.edge import config
    from edgefer.edge.loop import run
    from edgefer.edge.outputs import Dispatcher

    cfg = config.load(config_path, {"source": {"type": "capture", "device": video}})
    summary = run(cfg, dispatcher=Dispatcher([]))
    return {"frames": summary.frames, "faces": summary.faces, "seconds": round(summary.seconds, 3),
            "fps": round(summary.frames / summary.seconds, 1), "detector": cfg.detector.type}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--config", help="edgefer YAML config (default: the defaults)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not Path(args.video).is_file():
        raise SystemExit(f"{args.video}: video not found")
    rounds: dict[str, list[dict]] = {"fer": [], "edgefer": []}
    for i in range(args.rounds):
        rounds["fer"].append(run_fer(args.video))
        rounds["edgefer"].append(run_edgefer(args.video, args.config))
        print(f"round {i + 1}: fer {rounds['fer'][-1]}  edgefer {rounds['edgefer'][-1]}")
    best = {k: max(v, key=lambda r: r["fps"]) for k, v in rounds.items()}
    result = {"video": args.video, "cpus": os.cpu_count(), "machine": machine_line(), "best": best, "rounds": rounds,
              "speedup": round(best["edgefer"]["fps"] / best["fer"]["fps"], 2),
              "faces_at_least_peer": best["edgefer"]["faces"] >= best["fer"]["faces"]}
    print(f"on {result['machine']}")
    print(f"fer per-frame API: {best['fer']['fps']} fps, a face in {best['fer']['faces']} of {best['fer']['frames']}")
    print(f"edgefer loop:      {best['edgefer']['fps']} fps, a face in {best['edgefer']['faces']} of "
          f"{best['edgefer']['frames']}  ({result['speedup']}x)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
