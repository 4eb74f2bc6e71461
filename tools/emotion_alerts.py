"""Emotion alerts per real clip, before and after the evidence pause, light weighting and driver baseline.

Runs the real monitor (the ``edgefer run --source FILE --config FILE`` path: the same config loader, source,
detector, models, signals and rules) over each clip once per variant of the ``emotion`` config section:

- ``before``: every switch off, the monitor's logic before edge/emotion.py (the rules see the plain EMA);
- ``pause``: only the pause on yawns and closed eyes (with the hold-off);
- ``light``: only the light weighting;
- ``baseline``: only the driver's baseline;
- ``after``: the defaults (all three).

Per clip it prints the emotion alerts raised per rule and variant, and per-frame expression statistics: the share
of frames with a face whose top expression is fear, sad or angry, over all of them, over frames with a yawn or
closed-eye reading and over the others; the share of the evidence the average is fed with that reads so (after);
and the share of frames with a face on which each rule's signal is at or above its threshold.

    python tools/emotion_alerts.py [CLIP ...] [--variants before,after] [--look nir] [--json OUT] [--print-configs]
    python tools/emotion_alerts.py --synthetic 3     # the issue's night drivers, synthesised (edge/emotion_replay.py)
    python tools/emotion_alerts.py --fer2013 ../shared/data/fer2013/fer2013.csv.gz   # where dark_below/dim_below
                                                     # come from: the training faces' mean grey percentiles

``--look nir`` runs night-time near-infrared-looking copies of the clips instead (written to a temporary MJPG
file, frame by frame: flat contrast, lifted blacks, soft focus, seeded sensor noise; the whole-frame version of
compile/robustness.py's NIR look). Their faces are lit (a cabin camera's IR illuminator), so the light weighting
cannot silence them: they test the pause and the baseline.

Clips default to the shared real videos in ../shared/data/video and the demo. No figure depends on timing: the sources
carry their own clocks.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import yaml

from edgefer.edge import config, emotion
from edgefer.edge.emotion import EmotionConfig
from edgefer.edge.emotion_replay import night_driver, run_emotion_replay
from edgefer.edge.loop import run
from edgefer.edge.monitor import FrameResult
from edgefer.edge.outputs import Dispatcher

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data/video beside the checkout (a main clone or a worktree one level further down)
VIDEO_DIRS = [parent / "shared" / "data" / "video" for parent in REPO.parents[:2]]
CLIPS = ("driver_cabin_drowsy.mp4", "driver_cabin_night.mp4", "short_hamilton_clip.mp4", "webcam_woman_talking.mp4")
NEGATIVE = ("fear", "sad", "angry")
OFF = EmotionConfig.off().model_dump()
VARIANTS: dict[str, dict] = {
    "before": OFF,
    "pause": {**OFF, "pause_on_yawn": True, "pause_on_closed_eyes": True},
    "light": {**OFF, "light_weighting": True},
    "baseline": {**OFF, "relative_to_baseline": True},
    "after": EmotionConfig().model_dump(),
}


def variant_config(name: str) -> dict:
    """The YAML config of one variant: the defaults with this ``emotion`` section and no outputs but the console."""
    return {"emotion": VARIANTS[name], "privacy": {"block_network": True}}


def measure(clip: Path, cfg_path: Path) -> dict:
    """One run of the monitor over ``clip`` (a video, or ``demo``: the built-in 30 s drive) with the config file:
    alerts and per-frame figures."""
    cfg = config.load(cfg_path, {"source": config.source_from_arg(str(clip))})
    rules = {r.name: r for r in cfg.rules if r.signal.startswith("emotion.")}
    frames: list[dict] = []

    def on_frame(result: FrameResult) -> None:
        face = result.driver
        if face is None or face.expression is None:
            return
        s = result.signals
        frames.append({
            "top": max(face.expression, key=face.expression.__getitem__),
            "yawn_or_closed": (face.yawn is not None and face.yawn >= cfg.emotion.yawn_pause_above)
            or s.get("eye_closure") == 1.0,
            "evidence": s.get("emotion.evidence") or 0.0,
            "crop_mean": face.crop_mean,
            "on": {name: (s.get(r.signal) is not None and s[r.signal] >= r.threshold) for name, r in rules.items()},
        })

    summary = run(cfg, on_frame=on_frame, dispatcher=Dispatcher([]))
    alerts = [e for e in summary.events if e.kind == "alert" and e.name in rules]
    raised = Counter(e.name for e in alerts if e.action == "raise")

    def share(selected: list[dict], weight: str | None = None) -> float | None:
        total = sum(f[weight] if weight else 1.0 for f in selected)
        hits = sum(f[weight] if weight else 1.0 for f in selected if f["top"] in NEGATIVE)
        return None if total <= 0 else hits / total

    paused = [f for f in frames if f["yawn_or_closed"]]
    other = [f for f in frames if not f["yawn_or_closed"]]
    return {
        "frames": summary.frames, "faces": len(frames), "yawn_or_closed": len(paused),
        "raised": {name: raised.get(name, 0) for name in rules},
        "alerts": [(e.name, e.action, e.level, round(e.ts, 2)) for e in alerts],
        "negative_share": {"all": share(frames), "yawn_or_closed": share(paused), "other": share(other),
                           "evidence": share(frames, "evidence")},
        "top": dict(Counter(f["top"] for f in frames).most_common()),
        "crop_mean_p5_p50_p95": [round(float(v), 1) for v in np.percentile([f["crop_mean"] for f in frames],
                                                                            [5, 50, 95])] if frames else None,
        "evidence_frames": sum(f["evidence"] for f in frames),
        "evidence_share": sum(f["evidence"] for f in frames) / len(frames) if frames else None,
        "on_share": {name: sum(f["on"][name] for f in frames) / len(frames) if frames else None for name in rules},
    }


def nir_copy(clip: Path, out: Path, seed: int = 0) -> Path:
    """A near-infrared-looking copy of a video: grey, contrast 0.55 around the frame mean, blacks lifted to 60,
    a Gaussian blur of 1.5 px, sensor noise of std 6 (seeded), written as MJPG at the clip's frame rate."""
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    rng = np.random.default_rng(seed)
    writer = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        x = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
        x = (x - x.mean()) * 0.55 + x.mean()
        x = 60 + x * (1 - 60 / 255.0)
        x = cv2.GaussianBlur(x, (0, 0), 1.5) + rng.normal(0, 6, x.shape)
        grey = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, grey.shape[::-1])
        writer.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    cap.release()
    if writer is None:
        raise SystemExit(f"emotion_alerts: {clip}: no frame could be read")
    writer.release()
    return out


def synthetic(drivers: int, variants: list[str]) -> dict[str, dict[str, int]]:
    """Alerts raised per variant over ``drivers`` synthesised tired night drivers of 3 minutes each."""
    out: dict[str, dict[str, int]] = {}
    rules = [r for r in config.default_rules() if emotion.holds_rule(r)]
    for name in variants:
        cfg = EmotionConfig.model_validate(VARIANTS[name])
        raised: Counter[str] = Counter()
        for seed in range(drivers):
            _, _, events = run_emotion_replay(night_driver(seed), rules, cfg)
            raised.update(e.rule for e in events if e.kind == "raise")
        out[name] = {rule.name: raised.get(rule.name, 0) for rule in rules}
    return out


def fer2013_light(path: Path) -> dict[str, float]:
    """Percentiles of the mean grey level of FER2013's Training faces (the light the expression model knows)."""
    import csv
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    means = []
    with opener(path, "rt") as f:
        reader = csv.reader(f)
        header = next(reader)
        pixels, usage = header.index("pixels"), header.index("Usage")
        for row in reader:
            if row[usage] == "Training":
                means.append(np.asarray(row[pixels].split(), dtype=np.float32).mean())
    levels = (0.5, 1, 2, 5, 10, 50)
    return {"faces": len(means), **{f"p{q:g}": round(float(v), 1) for q, v in zip(levels, np.percentile(means, levels),
                                                                              strict=True)}}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", help="videos, or demo (default: the shared real clips and the demo)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--look", choices=["nir"], help="run near-infrared-looking copies of the clips instead")
    ap.add_argument("--fer2013", type=Path, help="instead of clips: the mean grey percentiles of FER2013's "
                                                 "Training faces (fer2013.csv[.gz])")
    ap.add_argument("--synthetic", type=int, metavar="N", help="instead of clips: N synthesised night drivers")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--print-configs", action="store_true", help="print each variant's config file first")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
    if args.fer2013:
        print(json.dumps(fer2013_light(args.fer2013)))
        return 0
    if args.synthetic:
        table = synthetic(args.synthetic, variants)
        print(f"| {args.synthetic} synthetic night drivers x 3 min | "
              + " | ".join(f"{rule} raised, {v}" for rule in table[variants[0]] for v in variants) + " |")
        print("|---|" + "---|" * (len(table[variants[0]]) * len(variants)))
        print("| raised | " + " | ".join(str(table[v][rule]) for rule in table[variants[0]] for v in variants) + " |")
        if args.json:
            args.json.write_text(json.dumps(table, indent=1))
        return 0
    video_dir = next((d for d in VIDEO_DIRS if d.is_dir()), VIDEO_DIRS[0])
    clips = [Path(c) for c in args.clips] or [video_dir / name for name in CLIPS] + [Path("demo")]
    missing = [str(c) for c in clips if str(c) != "demo" and not c.is_file()]
    if missing:
        print(f"emotion_alerts: clip(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2

    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in variants:
            paths[name] = Path(tmp) / f"emotion-{name}.yaml"
            paths[name].write_text(yaml.safe_dump(variant_config(name), sort_keys=False))
            if args.print_configs:
                print(f"# {name}: edgefer run --source CLIP --config emotion-{name}.yaml\n{paths[name].read_text()}")
        for clip in clips:
            label = clip.name
            if args.look == "nir" and str(clip) != "demo":
                clip, label = nir_copy(clip, Path(tmp) / f"{clip.stem}-nir.avi"), f"{clip.name} (NIR look)"
            results[label] = {}
            for name in variants:
                start = time.perf_counter()
                results[label][name] = measure(clip, paths[name])
                print(f"{label} {name}: {results[label][name]['raised']} "
                      f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)

    rules = sorted({r for per in results.values() for v in per.values() for r in v["raised"]})
    print("| clip | " + " | ".join(f"{r} raised, {v}" for r in rules for v in variants) + " |")
    print("|---|" + "---|" * (len(rules) * len(variants)))
    for clip, per in results.items():
        print(f"| {clip} | " + " | ".join(str(per[v]["raised"].get(r, 0)) for r in rules for v in variants) + " |")
    print()
    first, last = variants[0], variants[-1]
    print(f"| clip | frames with a face | expression crop mean grey p5 / p50 / p95 | yawn or closed-eye reading | "
          f"fear/sad/angry on top: all frames | "
          f"in yawn/closed frames | other frames | evidence, {last}: weighted frames (share) | "
          f"fear/sad/angry on top in the evidence, {last} | "
          + " | ".join(f"{r} signal on, {first} / {last}" for r in rules) + " |")
    print("|---|" + "---|" * (8 + len(rules)))
    for clip, per in results.items():
        a, b = per[first], per[last]
        share = a["negative_share"]
        light = " / ".join(f"{v:.0f}" for v in a["crop_mean_p5_p50_p95"] or [])
        print(f"| {clip} | {a['faces']} | {light} | {a['yawn_or_closed']} | {pct(share['all'])} | "
              f"{pct(share['yawn_or_closed'])} | {pct(share['other'])} | "
              f"{b['evidence_frames']:.1f} ({pct(b['evidence_share'])}) | {pct(b['negative_share']['evidence'])} | "
              + " | ".join(f"{pct(a['on_share'].get(r))} / {pct(b['on_share'].get(r))}" for r in rules) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
