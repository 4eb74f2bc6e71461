"""Alert timing of the default drowsiness rules on synthesised eye-openness replays (no camera, no clock).

- false alarms per hour: hours of normal driving (blinks of 100-400 ms every 2-6 s, sensor noise, a dim
  driver whose open eyes read p(open) 0.6) must raise no eye-closure or PERCLOS alert;
- detection delay: closures of 2-5 s inserted into normal driving; the warning must come 2.0 s after the eyes
  close (within one frame) and the urgent level at 3.0 s.

    python tools/drowsiness_timing.py [--hours 4] [--fps 15] [--json OUT]

The replays are synthesised (say so wherever these figures are quoted); the real-video check is
``edgefer run --source driver_cabin_drowsy.mp4``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgefer.edge.drowsiness import default_rules
from edgefer.edge.replay import ReplaySpec, run_replay, synthesise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rules = [r for r in default_rules() if r.name in ("eyes_closed", "drowsy_perclos")]

    false_alarms, hours = 0, 0.0
    drivers = [ReplaySpec(seconds=1800, fps=args.fps, seed=s, open_level=level, noise=noise)
               for s, (level, noise) in enumerate([(0.9, 0.05), (0.6, 0.08), (0.95, 0.02), (0.75, 0.1)] * 100)]
    for spec in drivers:
        if hours >= args.hours:
            break
        events = run_replay(synthesise(spec), rules)
        false_alarms += sum(1 for e in events if e.kind == "raise")
        hours += spec.seconds / 3600

    delays: dict[str, list[float]] = {"warning": [], "urgent": []}
    missed = 0
    rng = np.random.default_rng(1)
    for seed in range(60):
        duration = float(rng.uniform(2.2, 5.0))
        start = float(rng.uniform(40, 80))
        spec = ReplaySpec(seconds=100, fps=args.fps, seed=100 + seed, closures=((start, duration),))
        events = [e for e in run_replay(synthesise(spec), rules) if e.rule == "eyes_closed"]
        warn = next((e.timestamp for e in events if e.level == 1 and e.kind == "raise"), None)
        urgent = next((e.timestamp for e in events if e.level == 2), None)
        if warn is None:
            missed += 1
            continue
        delays["warning"].append(warn - start)
        if duration >= 3.0 + 1 / args.fps:
            if urgent is None:
                missed += 1
            else:
                delays["urgent"].append(urgent - start)
    result = {
        "synthesised": True, "fps": args.fps, "hours": round(hours, 2), "false_alarms": false_alarms,
        "false_alarms_per_hour": round(false_alarms / hours, 3),
        "closures": 60, "missed": missed,
        "warning_delay_s": {"min": round(min(delays["warning"]), 3), "max": round(max(delays["warning"]), 3)},
        "urgent_delay_s": {"min": round(min(delays["urgent"]), 3), "max": round(max(delays["urgent"]), 3)},
    }
    print(f"normal driving: {result['false_alarms']} false alarms in {result['hours']} h "
          f"({result['false_alarms_per_hour']}/h)")
    print(f"closures: {60 - missed}/60 detected; warning {result['warning_delay_s']} s after closing "
          f"(target 2.0 s + one frame = {2 + 1 / args.fps:.3f}); urgent {result['urgent_delay_s']} s (target 3.0 s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
