"""Synthesised eye-openness replays for timing checks (tests and ``tools/drowsiness_timing.py``).

A replay is a list of (timestamp, p_open) at a fixed frame rate: open eyes with sensor noise, blinks of
realistic duration and rate, and optional long closures. Running it through :mod:`edge.drowsiness` and the
alert rules needs no camera and no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.alerts import AlertEvent, RuleConfig, RuleState, step
from edge.drowsiness import DrowsinessConfig, DrowsyState, Observation, signals, update


@dataclass(frozen=True)
class ReplaySpec:
    seconds: float = 600.0
    fps: float = 15.0
    open_level: float = 0.9  # the model's p(open) for this driver's open eyes
    closed_level: float = 0.05
    noise: float = 0.05
    blink_every_s: tuple[float, float] = (2.0, 6.0)  # uniform interval between blinks
    blink_s: tuple[float, float] = (0.1, 0.4)  # uniform blink duration
    closures: tuple[tuple[float, float], ...] = ()  # (start, duration) of long closures
    seed: int = 0


def synthesise(spec: ReplaySpec) -> list[tuple[float, float]]:
    rng = np.random.default_rng(spec.seed)
    n = int(spec.seconds * spec.fps)
    ts = np.arange(n) / spec.fps
    closed = np.zeros(n, bool)
    t = rng.uniform(*spec.blink_every_s)
    while t < spec.seconds:
        d = rng.uniform(*spec.blink_s)
        closed |= (ts >= t) & (ts < t + d)
        t += d + rng.uniform(*spec.blink_every_s)
    for start, duration in spec.closures:
        closed |= (ts >= start) & (ts < start + duration)
    p = np.where(closed, spec.closed_level, spec.open_level) + rng.normal(0, spec.noise, n)
    return list(zip(ts.tolist(), np.clip(p, 0, 1).tolist(), strict=True))


def run_replay(samples: list[tuple[float, float]], rules: list[RuleConfig],
               cfg: DrowsinessConfig | None = None) -> list[AlertEvent]:
    cfg = cfg or DrowsinessConfig()
    state, rule_states, events = DrowsyState(), {r.name: RuleState() for r in rules}, []
    for ts, p_open in samples:
        state = update(state, Observation(eyes_open=p_open, face_box=(0, 0, 100, 100), frame_height=360), ts, cfg)
        values = signals(state, ts, cfg)
        for rule in rules:
            rule_states[rule.name], fired = step(rule_states[rule.name], values.get(rule.signal), ts, rule)
            events += fired
    return events
