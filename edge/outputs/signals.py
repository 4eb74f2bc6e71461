"""``type: signals``: a per-second summary of what the monitor measured, one JSON line per second, for
reviewing a drive (``edgefer report``): eye openness, PERCLOS, yawns, head yaw and pitch, attention zone,
expression, active alerts.

It is the event log's file handling (:class:`~edgefer.edge.outputs.jsonl.JsonlOutput`: whole lines, rotation at
``max_bytes``, a cap on the whole set, reopening a log moved away) with another line. A summary line that cannot
be written (a full card) is dropped and logged by the dispatcher: this is a review log, not the alert path, and
events never wait for it. ``fsync`` is off by default: one fsync a second wears an SD card, and a power cut
loses only the last few seconds of a review log.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from edgefer.edge.events import Event
from edgefer.edge.outputs.jsonl import JsonlConfig, JsonlOutput


class SignalsConfig(JsonlConfig):
    type: Literal["signals"] = "signals"  # type: ignore[assignment]
    path: Path = Field(description="the signal log, e.g. /var/lib/edgefer/signals.jsonl (its directory is created)")
    fsync: bool = Field(False, description="fsync after every line (off: a power cut loses the last seconds)")
    period_s: float = Field(1.0, ge=0.1, le=60, description="one summary line per this many seconds of stream time")


#: Signals that count things: the period's highest count, not a mean of counts.
COUNTS = frozenset({"yawns_per_window"})


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return round(sum(values) / len(values), 4) if values else None


def _max(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return round(max(values), 4) if values else None


def _mode(values: list[str | None]) -> str | None:
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


def summarise(samples: list[dict[str, Any]], start: float, seconds: float) -> dict[str, Any]:
    """One line from a period's per-frame samples (see :meth:`edgefer.edge.monitor.Monitor.sample`): shares and means
    of readings, the longest of each timer (``*_s``) and the highest count, the most frequent zone and
    expression, each alert's highest level."""
    keys = sorted({k for s in samples for k in s.get("signals", {})})
    signals = {k: (_max if k.endswith("_s") or k in COUNTS else _mean)([s["signals"].get(k) for s in samples])
               for k in keys}
    alerts: dict[str, int] = {}
    for s in samples:
        for rule, level in s.get("alerts", {}).items():
            alerts[rule] = max(alerts.get(rule, 0), level)
    return {
        "t": round(start, 3), "seconds": seconds, "frames": len(samples),
        "face": _mean([1.0 if s.get("face") else 0.0 for s in samples]),
        "eyes_open": _mean([s.get("eyes_open") for s in samples]),
        "yawn": _max([s.get("yawn") for s in samples]),
        "zone": _mode([s.get("zone") for s in samples]),
        "expression": _mode([s.get("expression") for s in samples]),
        "signals": signals,
        "alerts": alerts,
    }


class SignalsOutput(JsonlOutput):
    type_key = "signals"
    config_class = SignalsConfig
    config: SignalsConfig

    def __init__(self, config: SignalsConfig) -> None:
        super().__init__(config)
        self._bucket: list[dict[str, Any]] = []
        self._start: float | None = None

    def describe(self) -> str:
        return f"signals:{self.path}"

    def emit(self, event: Event) -> None:
        """Events go to the event log; this output records signals only (:meth:`observe`)."""

    def observe(self, sample: dict[str, Any]) -> None:
        """One frame's sample; a summary line is written once a period of stream time is complete."""
        ts = float(sample["ts"])
        period = self.config.period_s
        if self._start is not None and not (self._start <= ts < self._start + period):
            self._flush()
        if self._start is None:
            self._start = math.floor(ts / period) * period
        self._bucket.append(sample)

    def close(self) -> None:
        try:
            self._flush()
        finally:
            super().close()

    def _flush(self) -> None:
        bucket, start = self._bucket, self._start
        self._bucket, self._start = [], None  # a line that fails is dropped, never retried into the next one
        if not bucket or start is None:
            return
        line = summarise(bucket, start, self.config.period_s)
        line["time"] = datetime.now().astimezone().isoformat(timespec="milliseconds")
        self.append((json.dumps(line, ensure_ascii=False) + "\n").encode())
