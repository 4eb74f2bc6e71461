"""``type: jsonl``: the event log, one JSON object per line, appended and fsync'd per event.

Why this shape: a line-per-event log survives a power cut mid-write (at most the last line is torn, and a
failed write is truncated back off), is readable with ``tail``/``jq`` and never needs rewriting. It is rotated
at ``max_bytes`` (``events.jsonl`` -> ``events.jsonl.1`` ... ``.keep``, the oldest deleted) and the whole set
is held under ``max_total_bytes``, so it cannot fill the SD card by itself.

A write that fails (ENOSPC on a full card, a removed directory) is undone and raised: the dispatcher keeps the
event and hands it over again, so once there is space the missed events are written, in their order, with
their own times. A log deleted or moved away underneath (its directory removed, an external logrotate) is
noticed before each event and reopened at ``path``.

Several writers may share one log (two monitor processes, two outputs): each event's size check, rotation,
write and undo happen under an exclusive ``flock`` on the log's directory, so a rotation never renames a file
another writer is filling and an undo never cuts off another writer's line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edgefer.edge.events import Event
from edgefer.edge.outputs import Output, OutputConfig

MiB = 1024 * 1024


class JsonlConfig(OutputConfig):
    type: Literal["jsonl"] = "jsonl"
    path: Path = Field(description="the log file, e.g. /var/lib/edgefer/events.jsonl (its directory is created)")
    max_bytes: int = Field(10 * MiB, ge=4096, le=1024 * MiB, description="rotate once the file would exceed this")
    keep: int = Field(5, ge=0, le=100, description="rotated files kept (events.jsonl.1 is the newest); 0: none")
    max_total_bytes: int = Field(100 * MiB, ge=4096, le=64 * 1024 * MiB,
                                 description="cap on the log and its rotated files together; oldest go first")
    fsync: bool = Field(True, description="fsync after every event (off only for tests or a RAM disk)")

    @model_validator(mode="after")
    def _cap_fits(self) -> JsonlConfig:
        if self.max_total_bytes < self.max_bytes:
            raise ValueError(f"max_total_bytes {self.max_total_bytes} must be at least max_bytes {self.max_bytes}")
        return self


def record(event: Event) -> dict:
    """The JSON object for one event: its fields plus ``time``, its wall time in local ISO 8601."""
    data = event.to_dict()
    if isinstance(data.get("value"), float) and not math.isfinite(data["value"]):
        data["value"] = None  # JSON has no NaN; a poison value must not block the log
    data["time"] = datetime.fromtimestamp(event.wall_time).astimezone().isoformat(timespec="milliseconds")
    return data


class JsonlOutput(Output):
    type_key = "jsonl"
    config_class = JsonlConfig
    config: JsonlConfig

    def __init__(self, config: JsonlConfig) -> None:
        super().__init__(config)
        self.path = Path(config.path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)  # a permission error here: not created, said why
        self._fd: int | None = None
        self._thread_lock = threading.Lock()

    def describe(self) -> str:
        return f"jsonl:{self.path}"

    def emit(self, event: Event) -> None:
        self.append((json.dumps(record(event), ensure_ascii=False, default=str) + "\n").encode())

    def append(self, data: bytes) -> None:
        """Write one whole line, rotating first if it would not fit; a failed write is undone and raised."""
        try:
            with self._exclusive():
                fd = self._open()
                size = os.fstat(fd).st_size
                if size and size + len(data) > self.config.max_bytes:
                    self._rotate()
                    fd, size = self._open(), 0
                try:
                    self._write_all(fd, data)
                    if self.config.fsync:
                        os.fsync(fd)
                except OSError:
                    self._undo(fd, size)
                    raise
        except OSError as exc:
            self._close_fd()  # reopen next time: the directory may be back, the card replaced
            reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise OSError(exc.errno, f"event log {self.path}: {reason}") \
                from exc

    def close(self) -> None:
        self._close_fd()

    # -- internals -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """This writer alone on the log (other processes and outputs wait) for one event."""
        with self._thread_lock:
            try:
                lock = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:  # the directory was removed: make it again
                self.path.parent.mkdir(parents=True, exist_ok=True)
                lock = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield
            finally:
                os.close(lock)  # and the lock with it

    def _open(self) -> int:
        if self._fd is not None:  # still the file at ``path``? (not deleted, moved away, its directory removed)
            try:
                st, here = os.fstat(self._fd), os.stat(self.path)
                if (st.st_dev, st.st_ino) != (here.st_dev, here.st_ino):
                    self._close_fd()
            except OSError:
                self._close_fd()
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    @staticmethod
    def _undo(fd: int, size: int) -> None:
        """Cut a half-written line off again, so the retry appends a whole line after whole lines."""
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)

    def _rotated(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _rotate(self) -> None:
        self._close_fd()
        keep = self.config.keep
        if keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            self._rotated(keep).unlink(missing_ok=True)
            for n in range(keep - 1, 0, -1):
                if self._rotated(n).exists():
                    os.replace(self._rotated(n), self._rotated(n + 1))
            os.replace(self.path, self._rotated(1))
        # the cap: drop the oldest rotated files while the set is too big (the new file starts empty)
        old = [p for p in (self._rotated(n) for n in range(1, keep + 1)) if p.exists()]
        total = sum(p.stat().st_size for p in old)
        while old and total > self.config.max_total_bytes - self.config.max_bytes:
            oldest = old.pop()
            total -= oldest.stat().st_size
            oldest.unlink()
