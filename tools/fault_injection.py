"""Real faults for the soak (tools/soak_faults.py), all on the stream clock: a camera that drops, the event log's
file system filling up (a ballast file on a small tmpfs), a serial port that vanishes (a pty behind a symlink)."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgefer.edge import sources
from edgefer.edge.events import Event
from edgefer.edge.outputs import Dispatcher
from edgefer.edge.outputs.serial_line import parse_line
from edgefer.edge.sources.demo import DemoConfig, DemoSource


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
