"""Run the monitor over a source with the event and signal logs on, then draw the drive report (``edgefer report``).

    python tools/drive_report.py --source demo --out reports/drive-demo [--png docs/img/report-demo.png]
    python tools/drive_report.py --source ../shared/data/video/driver_cabin_night.mp4 --out reports/drive-night
    python tools/drive_report.py --source demo --scripted-pose --out reports/drive-demo-pose

``--scripted-pose`` (demo only) hands the monitor the head pose the demo *renders*
(``edgefer.edge.sources.demo.pose_at``) in place of a pose estimator's reading: a stand-in that shows the zone, head
and attention lanes and checks the chain from the monitor to the rules; it is not a measurement of any estimator.
The title says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edgefer.compile.report import write_report
from edgefer.edge import config, sources
from edgefer.edge.events import Event
from edgefer.edge.monitor import FaceResult, Monitor
from edgefer.edge.outputs import build_outputs
from edgefer.edge.sources.demo import pose_at


class ScriptedPoseMonitor(Monitor):
    """The monitor with the demo's rendered head pose as its pose reading (a stand-in for the estimator)."""

    _pose: tuple[float, float, float] | None = None

    def process(self, frame):
        self._pose = pose_at(frame.ts)
        return super().process(frame)

    def describe_face(self, gray, det, rounded: bool = False) -> FaceResult:
        result = super().describe_face(gray, det, rounded)
        result.head_pose = self._pose
        return result


def drive(source: str, out: Path, scripted_pose: bool, max_frames: int | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("events.jsonl", "signals.jsonl"):
        (out / name).unlink(missing_ok=True)
    cfg = config.load(overrides={
        "source": config.source_from_arg(source),
        "outputs": [{"type": "jsonl", "path": str(out / "events.jsonl"), "fsync": False},
                    {"type": "signals", "path": str(out / "signals.jsonl")}]})
    src = sources.registry()[cfg.source.type](cfg.source)
    monitor = (ScriptedPoseMonitor if scripted_pose else Monitor)(cfg)
    dispatcher = build_outputs(cfg.outputs)
    src.open()
    dispatcher.emit(Event("status", "monitor", "start", message=src.describe()))
    frames, last_ts, started = 0, 0.0, time.perf_counter()
    for frame in iter(src.read, None):
        result = monitor.process(frame)
        for event in result.events:
            dispatcher.emit(event)
        dispatcher.signals(monitor.sample(result))
        frames, last_ts = frames + 1, frame.ts
        if max_frames is not None and frames >= max_frames:
            break
    src.close()
    dispatcher.emit(Event("status", "monitor", "stop", ts=last_ts, message=f"{frames} frames"))
    dispatcher.close()
    return {"frames": frames, "seconds": round(time.perf_counter() - started, 1)}


def shot(page: Path, png: Path, size: str = "1000,560") -> None:
    """A screenshot of the page's top (the timeline) in headless Chromium (Debian: apt-get install chromium)."""
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    if browser is None:
        raise SystemExit("--page-shot needs chromium (Debian: apt-get install chromium)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", "--hide-scrollbars",
                        "--force-device-scale-factor=1", f"--user-data-dir={profile}", f"--screenshot={png.resolve()}",
                        f"--window-size={size}", page.resolve().as_uri()], capture_output=True, timeout=120, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="demo")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scripted-pose", action="store_true", help="demo only: its rendered pose as the pose reading")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--png", type=Path, help="also copy the timeline PNG here (e.g. docs/img/...)")
    ap.add_argument("--page-shot", type=Path, help="also screenshot report.html in headless Chromium to this PNG")
    ap.add_argument("--report-only", action="store_true", help="redraw the report from the logs in --out")
    args = ap.parse_args()
    if args.scripted_pose and args.source != "demo":
        raise SystemExit("--scripted-pose needs --source demo")
    ran = {"frames": "(logged)", "seconds": 0} if args.report_only else \
        drive(args.source, args.out, args.scripted_pose, args.max_frames)
    name = Path(args.source).name
    title = f"edgefer drive report: {name}" + (" (head pose: the demo's scripted pose, not an estimator)"
                                               if args.scripted_pose else "")
    result = write_report(args.out / "events.jsonl", args.out, signals_path=args.out / "signals.jsonl", title=title)
    if args.png:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result["png"], args.png)
    if args.page_shot:
        shot(Path(result["html"]), args.page_shot)
    events = [json.loads(x) for x in (args.out / "events.jsonl").read_text().splitlines()]
    for e in events:
        if e["kind"] == "alert":
            print(f"  {e['ts']:7.2f} s  {e['name']} {e['action']} level {e['level']}")
    print(f"{ran['frames']} frames in {ran['seconds']} s; {result['html']}, {result['png']}")


if __name__ == "__main__":
    main()
