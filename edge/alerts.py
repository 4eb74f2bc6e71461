"""Alert rules as pure functions of (state, signal value, timestamp), in the manner of openpilot's driver
monitoring: named settings, one state update per frame, timers instead of frame counts, so a replay with any
frame rate and no clock gives the same events.

A rule watches one signal (a smoothed expression probability, seconds without a face, eye closure...). It is
*on* while the signal is at or above ``threshold`` and only turns *off* once the signal falls below ``release``
(hysteresis). Held on for ``levels[k]`` seconds, the alert reaches level k+1 (escalation); once off for
``clear_after_s`` it clears. A cleared rule does not raise again within ``cooldown_s`` of its last raise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    signal: str = Field(min_length=1, description="name of the signal the rule watches")
    threshold: float = Field(description="the rule turns on at or above this value")
    release: float = Field(description="... and off only below this value (<= threshold)")
    levels: list[float] = Field(min_length=1, description="seconds held on before level 1, 2, ... (ascending)")
    clear_after_s: float = Field(2.0, ge=0, le=600, description="seconds off before the alert clears")
    cooldown_s: float = Field(0.0, ge=0, le=3600, description="no new raise within this many s of the last")

    @model_validator(mode="after")
    def _consistent(self) -> RuleConfig:
        if self.release > self.threshold:
            raise ValueError(f"rule {self.name!r}: release {self.release} must not exceed threshold {self.threshold}")
        if any(b <= a for a, b in zip(self.levels, self.levels[1:], strict=False)) or self.levels[0] < 0:
            raise ValueError(f"rule {self.name!r}: levels {self.levels} must be non-negative and ascending")
        return self


@dataclass(frozen=True)
class RuleState:
    on_since: float | None = None  # start of the current on-spell
    off_since: float | None = None  # start of the current off-spell (below release)
    level: int = 0  # 0 = no alert
    last_raise: float | None = None


@dataclass(frozen=True)
class AlertEvent:
    rule: str
    kind: Literal["raise", "escalate", "clear"]
    level: int
    timestamp: float
    value: float | None


def step(state: RuleState, value: float | None, ts: float, rule: RuleConfig) -> tuple[RuleState, list[AlertEvent]]:
    """Advance one rule by one observation. ``value`` None means no reading this frame: timers keep running
    but nothing turns on or off."""
    events: list[AlertEvent] = []
    if value is not None:
        if value >= rule.threshold:
            state = replace(state, on_since=state.on_since if state.on_since is not None else ts, off_since=None)
        elif value < rule.release:
            state = replace(state, on_since=None,
                            off_since=state.off_since if state.off_since is not None else ts)
    if state.on_since is not None:
        held = ts - state.on_since
        target = sum(1 for s in rule.levels if held >= s)
        if target > state.level:
            cooling = (state.level == 0 and state.last_raise is not None
                       and ts - state.last_raise < rule.cooldown_s)
            if not cooling:
                kind = "raise" if state.level == 0 else "escalate"
                state = replace(state, level=target, last_raise=ts if state.level == 0 else state.last_raise)
                events.append(AlertEvent(rule.name, kind, target, ts, value))
    elif state.level > 0 and state.off_since is not None and ts - state.off_since >= rule.clear_after_s:
        events.append(AlertEvent(rule.name, "clear", 0, ts, value))
        state = replace(state, level=0)
    return state, events
