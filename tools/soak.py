"""Memory over a long drive: run the monitor on the demo for hours of stream time, as fast as it goes, with the
JSONL event log on, and print peak RSS sampled along the way. A monitor left in a car for hours must not grow.

    python tools/soak.py [--hours 1] [--log-dir /tmp/edgefer-soak]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

from edgefer.edge import config
from edgefer.edge.bench import rss_mb
from edgefer.edge.loop import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--log-dir", default=None)
    args = ap.parse_args()
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="edgefer-soak-")
    cfg = config.validate({
        "privacy": {"block_network": False},
        "source": {"type": "demo", "duration_s": args.hours * 3600},
        "outputs": [{"type": "jsonl", "path": f"{log_dir}/events.jsonl", "max_bytes": 65536, "keep": 2}],
    })
    samples: list[tuple[int, float]] = []

    def sample(result) -> None:
        if result.frame.index % 9000 == 0:
            samples.append((result.frame.index, round(rss_mb(), 1)))

    start = time.perf_counter()
    summary = run(cfg, on_frame=sample)
    samples.append((summary.frames, round(rss_mb(), 1)))
    result = {"stream_hours": args.hours, "frames": summary.frames, "wall_s": round(time.perf_counter() - start, 1),
              "rss_mb_by_frame": samples, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                               / 1024.0, 1),
              "events": len(summary.events), "log_dir": log_dir}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
