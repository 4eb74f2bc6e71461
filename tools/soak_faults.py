"""A long drive with faults: the monitor on the demo for hours of *stream time*, as fast as the machine goes,
while the camera drops, the event log's file system fills up and frees, and the serial port vanishes and
comes back. Prints (and writes as JSON) RSS over time, events emitted vs delivered per output, and recovery
times; ``--plot`` draws them.

    sudo python tools/soak_faults.py --hours 8 --json docs/soak-faults.json --plot docs/img/soak-faults.png

Every timer runs on the stream clock (the source's frame times), so 8 h of stream time is the same drive
whether it takes 8 h or 30 min of wall time: the faults are scheduled in stream time; the monitor's camera
reopen back-off sleeps through ``run(sleep=...)``, which here advances the stream clock instead of the wall
clock; the dispatcher's retry back-off reads ``Dispatcher(clock=...)``, here the stream clock too.

The faults are real, not mocks: the camera is the demo source behind a wrapper that raises ``SourceLost`` and
refuses to reopen for the outage (frames of the outage are never seen, as with a real camera); the JSONL log
lives on a small tmpfs mounted for the run, filled with a ballast file until writes fail with ENOSPC, then
freed; the serial output writes through pyserial to a pseudo-terminal reached by a symlink (as udev's
/dev/serial/by-id links), and "unplugging" closes the pty and removes the link (writes fail with EIO, the
reopen with ENOENT), "plugging in" makes a new pty and link. A reader on the pty's other side checks each
line's checksum. Mounting needs root: run it as root or under ``unshare -rm`` (an unprivileged mount namespace).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fault_injection import DroppingCamera, Faults, PtyPort, Schedule, Sequence, StreamClock, mount_tmpfs

from edgefer.edge import config, plugins, sources
from edgefer.edge.bench import rss_mb
from edgefer.edge.events import Event
from edgefer.edge.loop import run
from edgefer.edge.outputs import Dispatcher, build_outputs
from edgefer.edge.sources.demo import DemoConfig

# -- the soak ----------------------------------------------------------------------------------------------


class CountingDispatcher(Dispatcher):
    """The real dispatcher; it also records every event the monitor emits, to compare with what arrived."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.emitted = Sequence()

    def emit(self, event: Event) -> None:
        self.emitted.add(event)
        super().emit(event)


def read_log(log_path: Path, keep: int) -> Sequence:
    """Everything the log holds, oldest rotated file first."""
    files = [log_path.with_name(f"{log_path.name}.{n}") for n in range(keep, 0, -1)] + [log_path]
    seen = Sequence()
    for path in files:
        if path.exists():
            with open(path) as fh:
                for line in fh:
                    seen.add(json.loads(line))
    return seen


def compare(received: Sequence, emitted: Sequence, stats: dict) -> dict:
    """One output: what the dispatcher was asked to deliver to it (``offered``: the monitor's events and the
    notices about the other output), what it delivered, what the far side holds, and whether the monitor's
    own events arrived all, once each, in order (same count and same digest)."""
    arrived = received.count + received.notices
    same = received.count == emitted.count and received.digest() == emitted.digest()
    return {"offered": stats["offered"], "delivered": stats["delivered"], "received": arrived,
            "dropped": stats["dropped"], "pending": stats["pending"], "failed_attempts": stats["failed"],
            "failure_spells": stats["spells"], "monitor_events_emitted": emitted.count,
            "monitor_events_received": received.count, "notices_received": received.notices,
            "same_events_in_order": same, "equal": same and stats["offered"] == stats["delivered"] == arrived}


def soak(hours: float, camera_cfg: dict, camera: Schedule, disk: Schedule, serial: Schedule, work: Path,
         tmpfs_kib: int, rss_every: int) -> dict:
    total_s = hours * 3600
    clock = StreamClock()
    log_fs = work / "logfs"
    mount_tmpfs(log_fs, tmpfs_kib)
    keep = 30
    log_path = log_fs / "events.jsonl"
    port = None
    sources.registry()  # fills the plugin cache that run() looks the source up in
    registered = plugins._CACHE[(sources.__name__, sources.Source)]
    try:
        port = PtyPort(work / "ttyEDGE")
        outputs = build_outputs([
            {"type": "jsonl", "path": str(log_path), "max_bytes": 256 * 1024, "keep": keep,
             "max_total_bytes": (keep + 1) * 256 * 1024},
            {"type": "serial", "port": str(port.link)},
        ]).outputs
        dispatcher = CountingDispatcher(outputs, clock=clock)  # retry back-off on the stream clock
        labels = {"disk": outputs[0].describe(), "serial": outputs[1].describe()}
        faults = Faults(dispatcher, log_fs, port, {"disk": disk.windows(total_s), "serial": serial.windows(total_s)},
                        labels)
        demo = DemoConfig(duration_s=total_s, **camera_cfg)
        source = DroppingCamera(demo, clock, camera.windows(total_s), faults.at)
        cfg = config.validate({"privacy": {"block_network": False}})
        cfg.source = sources.SourceConfig(type="soak-camera")
        registered["soak-camera"] = lambda _cfg: source  # the monitor builds its source from the registry

        def sleep(seconds: float) -> None:  # the camera reopen back-off, on the stream clock
            clock.now += seconds
            faults.at(clock.now)

        rss: list[tuple[float, float, float, int]] = []
        wall0 = time.perf_counter()

        def on_frame(result) -> None:
            if result.frame.index % rss_every == 0:
                rss.append((round(result.frame.ts / 3600, 4), round(rss_mb(), 2),
                            round(time.perf_counter() - wall0, 1), dispatcher.emitted.count))

        summary = run(cfg, on_frame=on_frame, dispatcher=dispatcher, sleep=sleep)
        faults.at(clock.now)
        wall_s = time.perf_counter() - wall0
        # what run() keeps on purpose: the latest events (RunSummary.events, at most 10,000); RSS grows with it
        history = {"events_held": len(summary.events), "max_events": summary.events.maxlen,
                   "mb": round(deep_size(summary.events) / 1e6, 2)}
        rss.append((round(clock.now / 3600, 4), round(rss_mb(), 2), round(wall_s, 1), dispatcher.emitted.count))
        pending_at_end = {k: v["pending"] for k, v in dispatcher.stats().items()}
        dispatcher.close()
        time.sleep(0.2)
        port.close()
        stats = dispatcher.stats()
        result_outputs = {
            labels["disk"]: compare(read_log(log_path, keep), dispatcher.emitted, stats[labels["disk"]]),
            labels["serial"]: compare(port.received, dispatcher.emitted, stats[labels["serial"]]),
        }
        result_outputs[labels["serial"]]["bad_lines"] = len(port.bad_lines)
        for label, pending in pending_at_end.items():
            result_outputs[label]["pending_before_close"] = pending
        log_files = len(list(log_fs.glob("events.jsonl*")))
    finally:
        registered.pop("soak-camera", None)
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()
        subprocess.run(["umount", str(log_fs)], check=False)

    camera_rec = [{**o, "recovery_s": round(o["reopened_s"] - o["back_s"], 3)} for o in source.outages]
    values = [r[1] for r in rss[:-1]]  # while the monitor ran (the last sample is after run() returned)
    after_1h = [r[1] for r in rss[:-1] if r[0] >= 1.0]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_name()}",
        "stream_hours": hours, "stream_hours_run": round(clock.now / 3600, 4),
        "camera": f"demo {demo.width}x{demo.height} at {demo.fps:g} fps",
        "frames": summary.frames, "wall_s": round(wall_s, 1),
        "schedules_s": {k: vars(s) for k, s in (("camera", camera), ("disk", disk), ("serial", serial))},
        "tmpfs_kib": tmpfs_kib, "log_files_at_end": log_files,
        "rss_mb": {"first": values[0], "min": min(values), "max": max(values),
                   "after_1h_min": min(after_1h, default=None), "after_1h_max": max(after_1h, default=None),
                   "after_run": rss[-1][1],
                   "peak_ru_maxrss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
        "rss_samples_h_mb_wall_s_events": rss, "event_history": history,
        "monitor_events_emitted": dispatcher.emitted.count,
        "outputs": result_outputs,
        "recovery": {"camera": camera_rec, **faults.records},
        "summary": {"reconnects": summary.reconnects, "bad_frames": summary.bad_frames, "faces": summary.faces},
        "ok": all(o["equal"] and o["pending"] == 0 and o["dropped"] == 0 for o in result_outputs.values()),
    }


def deep_size(events) -> int:
    """Bytes held by a collection of events: the container, each event, its fields (shared strings once)."""
    seen: set[int] = set()
    total = sys.getsizeof(events)
    for event in events:
        for obj in (event, vars(event), *vars(event).values()):
            if id(obj) not in seen:
                seen.add(id(obj))
                total += sys.getsizeof(obj)
    return total


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def recovery_figures(records: list[dict]) -> dict:
    times = sorted(r["recovery_s"] for r in records if "recovery_s" in r)
    if not times:
        return {"n": len(records), "recovered": 0}
    return {"n": len(records), "recovered": len(times), "min_s": times[0], "median_s": times[len(times) // 2],
            "max_s": times[-1]}


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["rss_samples_h_mb_wall_s_events"][:-1]  # the last one is after run() returned
    hours = [r[0] for r in samples]
    rss = [r[1] for r in samples]
    history = result["event_history"]
    per_event_mb = history["mb"] / max(history["events_held"], 1)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.plot(hours, rss, color="black", lw=1.2, label="RSS (VmRSS)")
    ax.plot(hours, [r[1] - min(r[3], history["max_events"]) * per_event_mb for r in samples], color="black",
            lw=1.0, ls="--", label=f"RSS less the event history run() keeps ({per_event_mb * 1e6:.0f} B/event)")
    colours = {"camera": "tab:red", "disk": "tab:blue", "serial": "tab:green"}
    labels = {"camera": "camera lost", "disk": "log disk full", "serial": "serial port gone"}
    lo, hi = min(rss) - 4, max(rss) + 2
    for what, rows in result["recovery"].items():
        for i, r in enumerate(rows):
            start = r.get("lost_s", r.get("start_s"))
            end = r.get("back_s", r.get("freed_s"))
            ax.axvspan(start / 3600, end / 3600, color=colours[what], alpha=0.35, lw=0,
                       label=labels[what] if i == 0 else None)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("stream time (h)")
    ax.set_ylabel("RSS (MB)")
    outs = result["outputs"]
    counts = "; ".join(f"{k.split(':')[0]}: {v['offered']} offered, {v['received']} received" for k, v in outs.items())
    ax.set_title(f"edgefer monitor, {result['stream_hours_run']:g} h of stream time ({result['frames']:,} frames) in "
                 f"{result['wall_s'] / 60:.0f} min of wall time\n{counts}\n{result['machine']}", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=8.0, help="stream hours")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--size", default="640x360", help="demo frame size WxH")
    ap.add_argument("--camera", default="600,300,30", help="EVERY,OFFSET,LENGTH in stream seconds: camera drops")
    ap.add_argument("--disk", default="3600,1080,300", help="EVERY,OFFSET,LENGTH: the log's file system full")
    ap.add_argument("--serial", default="2400,1350,120", help="EVERY,OFFSET,LENGTH: the serial port unplugged")
    ap.add_argument("--tmpfs-kib", type=int, default=16384, help="size of the log's file system")
    ap.add_argument("--rss-every", type=int, default=1800, help="sample RSS every N frames")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--plot", help="write the PNG here")
    ap.add_argument("--replot", help="only redraw --plot from this recorded JSON")
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), args.plot)
        return
    schedules = [Schedule(*map(float, s.split(","))) for s in (args.camera, args.disk, args.serial)]
    def stop(_signum, _frame) -> None:  # `timeout` stops the drive like Ctrl-C: the figures so far are reported
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="edgefer-soak-") as work:
        width, height = map(int, args.size.split("x"))
        result = soak(args.hours, {"fps": args.fps, "width": width, "height": height}, *schedules, Path(work),
                      args.tmpfs_kib, args.rss_every)
    result["recovery_figures"] = {k: recovery_figures(v) for k, v in result["recovery"].items()}
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.plot:
        plot(result, args.plot)
    brief = {k: v for k, v in result.items() if k not in ("rss_samples_h_mb_wall_s_events", "recovery")}
    print(json.dumps(brief, indent=1))
    if not result["ok"]:
        raise SystemExit("events were lost or are still pending: see outputs")


if __name__ == "__main__":
    main()
