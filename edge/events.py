"""What the monitor tells its outputs: alerts raised, escalated and cleared, faults and status."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

EventKind = Literal["alert", "fault", "status"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    name: str  # the rule ("anger", "no_face", "eyes_closed") or the fault ("camera_lost", "output_failed")
    action: str  # alerts: raise | escalate | clear; faults: what happened; status: start | stop | ...
    level: int = 0  # alert level (0 = cleared); faults: 1 warning, 2 error
    ts: float = 0.0  # stream time in seconds (the source's clock; a replay has no wall clock)
    value: float | None = None
    message: str = ""
    wall_time: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One human-readable line (console, serial)."""
        value = "" if self.value is None else f" value={self.value:.2f}"
        text = f" {self.message}" if self.message else ""
        return f"{self.kind.upper()} {self.name} {self.action} level={self.level} t={self.ts:.2f}s{value}{text}"
