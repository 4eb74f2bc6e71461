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
import hashlib
import json
import math
import os
import platform
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge import config, plugins, sources
from edge.events import Event
from edge.monitor import run
from edge.outputs import Dispatcher, build_outputs
from edge.outputs.serial_line import parse_line
from edge.sources.demo import DemoConfig, DemoSource


@dataclass(frozen=True)
class Schedule:
    """A fault every ``every_s`` of stream time, from ``offset_s``, lasting ``length_s``."""

    every_s: float
    offset_s: float
    length_s: float

    def windows(self, total_s: float) -> list[tuple[float, float]]:
        n = int(max(0.0, total_s - self.offset_s - self.length_s) // self.every_s) + 1
        return [(self.offset_s + k * self.every_s, self.offset_s + k * self.every_s + self.length_s) for k in range(n)
                if self.offset_s + k * self.every_s + self.length_s <= total_s]


class StreamClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# -- the serial port that comes and goes ---------------------------------------------------------------------


class PtyPort:
    """A pseudo-terminal reached through the symlink ``link``; a reader thread checks what arrives."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.lock = threading.Lock()
        self.master: int | None = None
        self.slave: int | None = None
        self.received = Sequence()
        self.bad_lines: list[bytes] = []
        self._buffer = b""
        self._stop = False
        self.plug()
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()

    def plug(self) -> None:
        with self.lock:
            self.master, self.slave = os.openpty()
            os.set_blocking(self.master, False)
            os.symlink(os.ttyname(self.slave), self.link)

    def unplug(self) -> None:
        with self.lock:
            self._drain()  # what the monitor wrote before the cable went is what the far side got
            os.unlink(self.link)
            for fd in (self.master, self.slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.master = self.slave = None
            self._buffer = b""

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        if self.master is not None:
            self.unplug()

    def _drain(self) -> None:
        while self.master is not None:
            try:
                chunk = os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            self._buffer += chunk
            *whole, self._buffer = self._buffer.split(b"\n")
            for raw in whole:
                try:
                    self.received.add(parse_line(raw.rstrip(b"\r") + b"\r\n"))
                except ValueError:
                    self.bad_lines.append(raw)

    def _read_loop(self) -> None:
        while not self._stop:
            with self.lock:
                if self.master is not None:
                    ready, _, _ = select.select([self.master], [], [], 0.02)
                    if ready:
                        self._drain()
            time.sleep(0.001)  # let unplug() take the lock


# -- the camera that drops -------------------------------------------------------------------------------------


class DroppingCamera(sources.Source):
    """The demo at its frame rate, lost for each window of ``drops``: ``read`` raises SourceLost at the first
    frame inside a window, ``open`` fails until the window has passed on the stream clock, and the frames of
    the outage are gone (the next frame is the first one due after the reopen)."""

    type_key = ""  # not discovered: handed to the monitor through a one-off registry entry

    def __init__(self, cfg: DemoConfig, clock: StreamClock, drops: list[tuple[float, float]],
                 on_time: Callable[[float], None]) -> None:
        super().__init__(cfg)
        self.demo = DemoSource(cfg)
        self.clock, self.drops, self.on_time = clock, list(drops), on_time
        self.opened = False
        self.lost_at: float | None = None
        self.outages: list[dict] = []

    def open(self) -> None:
        if not self.opened:
            self.demo.open()
            self.opened = True
            return
        assert self.lost_at is not None
        back_at = next(end for start, end in self.drops if start <= self.lost_at < end)
        if self.clock.now < back_at:
            raise sources.SourceError(f"camera not found (unplugged at t={self.lost_at:.1f} s)")
        self.demo.index = math.ceil(self.clock.now * self.demo.config.fps - 1e-9)
        self.outages.append({"lost_s": self.lost_at, "back_s": back_at, "reopened_s": self.clock.now})
        self.lost_at = None

    def read(self):
        if self.lost_at is not None:  # the monitor reads again only after open() succeeded
            raise RuntimeError("read while lost")
        t = self.demo.index / self.demo.config.fps
        self.clock.now = max(self.clock.now, t)
        self.on_time(self.clock.now)
        if any(start <= t < end for start, end in self.drops):
            self.lost_at = t
            raise sources.SourceLost(f"no frame from the camera at t={t:.1f} s")
        return self.demo.read()

    def describe(self) -> str:
        return "demo camera with scheduled drops"


# -- the soak ----------------------------------------------------------------------------------------------


class CountingDispatcher(Dispatcher):
    """The real dispatcher; it also records every event the monitor emits, to compare with what arrived."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.emitted = Sequence()

    def emit(self, event: Event) -> None:
        self.emitted.add(event)
        super().emit(event)


def key(event: Event | dict) -> tuple:
    get = event.get if isinstance(event, dict) else lambda k: getattr(event, k)
    return get("kind"), get("name"), get("action"), int(get("level")), f"{float(get('ts')):.3f}"


NOTICES = ("output_failed", "output_recovered")


class Sequence:
    """A running digest of a sequence of events: two are equal iff the same events came in the same order (kept
    small so the soak's own bookkeeping does not show in the RSS it measures)."""

    def __init__(self) -> None:
        self.count, self.notices, self._digest = 0, 0, hashlib.sha256()

    def add(self, event: Event | dict) -> None:
        if (event["name"] if isinstance(event, dict) else event.name) in NOTICES:
            self.notices += 1  # the dispatcher's notices about another output
            return
        self.count += 1
        self._digest.update(repr(key(event)).encode())

    def digest(self) -> str:
        return self._digest.hexdigest()


@dataclass
class Faults:
    """Applies the disk and serial schedules as the stream clock passes them, and times each recovery: from the
    fault's end (space freed, port back) to the moment that output has nothing pending and works again."""

    dispatcher: Dispatcher
    log_fs: Path
    port: PtyPort
    windows: dict[str, list[tuple[float, float]]]
    labels: dict[str, str]  # "disk"/"serial" -> the output's label in the dispatcher
    records: dict[str, list[dict]] = field(default_factory=lambda: {"disk": [], "serial": []})
    _active: set[str] = field(default_factory=set)
    _waiting: dict[str, dict] = field(default_factory=dict)

    def at(self, now: float) -> None:
        for what, windows in self.windows.items():
            while windows:
                start, end = windows[0]
                if what not in self._active:
                    if now < start:
                        break
                    if what in self._waiting:  # the last spell had not recovered when this one began
                        self.records[what].append(self._waiting.pop(what))
                    self._waiting[what] = {"start_s": start}
                    self._begin(what)
                    self._active.add(what)
                if now < end:
                    break
                self._end(what)
                self._active.discard(what)
                self._waiting[what]["freed_s"] = end
                windows.pop(0)
        for what, rec in list(self._waiting.items()):
            stats = self.dispatcher.stats()[self.labels[what]]
            rec["most_pending"] = max(rec.get("most_pending", 0), stats["pending"])
            if "freed_s" in rec and stats["pending"] == 0 and not stats["failing"]:
                rec["recovered_s"] = now
                rec["recovery_s"] = round(now - rec["freed_s"], 3)
                self.records[what].append(self._waiting.pop(what))

    def _begin(self, what: str) -> None:
        if what == "serial":
            self.port.unplug()
            return
        fd = os.open(self.log_fs / "ballast", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for size in (1 << 16, 4096, 1):  # until ENOSPC, down to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    def _end(self, what: str) -> None:
        if what == "serial":
            self.port.plug()
        else:
            (self.log_fs / "ballast").unlink()


def mount_tmpfs(where: Path, size_kib: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
                       check=True, capture_output=True, text=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise SystemExit(f"cannot mount a {size_kib} KiB tmpfs at {where} for the log ({detail.strip()}); run as "
                         "root or under `unshare -rm`") from None


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
