"""Synthesised replays for timing checks (tests, ``tools/drowsiness_timing.py``, ``tools/attention_drive.py``).

A replay is a list of (timestamp, p_open) at a fixed frame rate: open eyes with sensor noise, blinks of
realistic duration and rate, and optional long closures. Running it through :mod:`edgefer.edge.drowsiness` and the
alert rules needs no camera and no clock. A drive of head poses (:func:`synthesise_drive`: road ahead with
sway and estimator noise, mirror, instrument and console glances, dropouts) does the same for
:mod:`edgefer.edge.attention`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgefer.edge import attention
from edgefer.edge.alerts import AlertEvent, RuleConfig, RuleState, step
from edgefer.edge.attention import AttentionConfig, AttentionState
from edgefer.edge.drowsiness import DrowsinessConfig, DrowsyState, Observation, signals, update


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


# -- head pose: synthesised drives for the attention rules (edge/attention.py) ----------------------------------

#: Normal-driving glances: (zone, probability, mean (yaw, pitch) from road ahead, spread, duration range in s).
#: Head angles, not gaze (a head turns only part of the way to a mirror); a left-hand-drive car.
NORMAL_GLANCES = (
    ("left_mirror", 0.30, (-42.0, -2.0), (5.0, 3.0), (0.5, 2.0)),
    ("right_mirror", 0.20, (45.0, -3.0), (5.0, 3.0), (0.5, 2.0)),
    ("instrument_cluster", 0.40, (0.0, -18.0), (4.0, 3.0), (0.3, 1.5)),
    ("centre_console", 0.10, (28.0, -30.0), (5.0, 5.0), (0.4, 1.2)),  # a quick look at the radio
)


@dataclass(frozen=True)
class DriveSpec:
    seconds: float = 600.0
    fps: float = 15.0
    road: tuple[float, float] = (0.0, 0.0)  # this driver's road-ahead (yaw, pitch) as the camera sees it
    dwell_s: tuple[float, float] = (2.0, 10.0)  # uniform time on the road between glances
    glances: tuple = NORMAL_GLANCES
    turn_s: tuple[float, float] = (0.15, 0.3)  # head movement into and out of a glance (inside its duration;
    # (0, 0): a step)
    noise_deg: float = 2.0  # estimator noise at the front; grows with |yaw| (profile faces are harder)
    noise_per_deg: float = 0.05
    outliers: float = 0.005  # share of frames with a gross error of 10-25 degrees
    dropouts_per_min: float = 1.0  # frames with no pose (face lost) for 0.1-0.5 s
    sway_deg: tuple[float, float] = (3.0, 2.0)  # slow head sway on the road (yaw, pitch amplitude)
    events: tuple[tuple[float, str, float, tuple[float, float]], ...] = ()  # (start, zone, duration, pose) extra
    seed: int = 0


def synthesise_drive(spec: DriveSpec) -> tuple[list[tuple[float, tuple[float, float, float] | None]], list[str]]:
    """Head poses per frame (None: no pose) and the true zone per frame ("road_ahead" between glances)."""
    rng = np.random.default_rng(spec.seed)
    n = int(spec.seconds * spec.fps)
    ts = np.arange(n) / spec.fps
    yaw = spec.sway_deg[0] * np.sin(2 * np.pi * ts / 11.0 + rng.uniform(0, 6.3))
    pitch = spec.sway_deg[1] * np.sin(2 * np.pi * ts / 7.0 + rng.uniform(0, 6.3))
    truth = np.array(["road_ahead"] * n, dtype=object)
    zones = [g[0] for g in spec.glances]
    probs = np.array([g[1] for g in spec.glances], dtype=np.float64)

    def glance(start: float, duration: float, target: tuple[float, float], zone: str) -> None:
        turn = min(rng.uniform(*spec.turn_s), duration / 2)
        i0 = int(np.ceil(start * spec.fps - 1e-6))  # a start on the frame grid is that frame, not the next
        i1 = min(n, int(np.ceil((start + duration) * spec.fps - 1e-6)))
        t = ts[i0:i1] - start
        if turn > 0:
            ramp = np.clip(np.minimum(t, duration - t) / turn, 0.0, 1.0)
            ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
        else:  # a step: the timing checks count from the first frame of the glance
            ramp = np.ones_like(t)
        yaw[i0:i1] += ramp * (target[0] - yaw[i0:i1])
        pitch[i0:i1] += ramp * (target[1] - pitch[i0:i1])
        truth[i0:i1] = zone

    t = rng.uniform(*spec.dwell_s)
    while spec.glances and t < spec.seconds:
        k = int(rng.choice(len(zones), p=probs / probs.sum()))
        _, _, mean, spread, durations = spec.glances[k]
        duration = float(rng.uniform(*durations))
        glance(t, duration, (rng.normal(mean[0], spread[0]), rng.normal(mean[1], spread[1])), zones[k])
        t += duration + rng.uniform(*spec.dwell_s)
    for start, zone, duration, pose in spec.events:
        glance(start, duration, pose, zone)

    noise = spec.noise_deg + spec.noise_per_deg * np.abs(yaw)
    yaw_seen = yaw + rng.normal(0, 1, n) * noise + spec.road[0]
    pitch_seen = pitch + rng.normal(0, 1, n) * noise + spec.road[1]
    gross = rng.random(n) < spec.outliers
    yaw_seen[gross] += rng.choice([-1, 1], gross.sum()) * rng.uniform(10, 25, gross.sum())
    pitch_seen[gross] += rng.choice([-1, 1], gross.sum()) * rng.uniform(10, 25, gross.sum())
    roll = rng.normal(0, 3, n)
    lost = np.zeros(n, bool)
    for _ in range(rng.poisson(spec.dropouts_per_min * spec.seconds / 60)):
        start = rng.uniform(0, spec.seconds)
        lost |= (ts >= start) & (ts < start + rng.uniform(0.1, 0.5))
    poses = [(float(t), None if off else (float(y), float(p), float(r)))
             for t, y, p, r, off in zip(ts, yaw_seen, pitch_seen, roll, lost, strict=True)]
    return poses, truth.tolist()


def run_attention_replay(poses: list[tuple[float, tuple[float, float, float] | None]], rules: list[RuleConfig],
                         cfg: AttentionConfig | None = None,
                         on_frame: Callable[[float, AttentionState], None] | None = None) -> list[AlertEvent]:
    """Head poses through :mod:`edgefer.edge.attention` and the alert rules; no camera, no clock."""
    cfg = cfg or AttentionConfig()
    state, rule_states, events = AttentionState(), {r.name: RuleState() for r in rules}, []
    for ts, pose in poses:
        state = attention.update(state, Observation(head_pose=pose), ts, cfg)
        values = attention.signals(state, ts, cfg)
        for rule in rules:
            rule_states[rule.name], fired = step(rule_states[rule.name], values.get(rule.signal), ts, rule)
            events += fired
        if on_frame is not None:
            on_frame(ts, state)
    return events
