"""Drowsiness and attention signals as pure functions of (state, observation, timestamp).

Per frame the monitor observes the driver's eye openness (the eye-state model's p(open), both eyes averaged),
a yawn probability, the face box and keypoints, and the frame's brightness. From these this module keeps:

- **calibrated openness**: p(open) divided by the driver's own open-eye baseline, learned as a high percentile
  of p(open) over the first ``calibration_s`` seconds with a face (glasses, eye shape and IR light shift the raw
  value a lot), so "closed" means closed for *this* driver;
- **closure episodes** with hysteresis: a closure shorter than ``blink_max_s`` is a blink (duration and rate are
  reported), a longer one is a microsleep candidate (the ``eyes_closed_s`` signal grows while it lasts);
- **PERCLOS** (P80 style): the share of the last ``perclos_window_s`` seconds during which the eyes were at least
  80 % closed, i.e. calibrated openness below 0.2;
- **yawns** (episodes of yawn probability over a threshold lasting ``yawn_min_s``) counted per window;
- **head drop**: how far the face centre sank below its calibrated height, in face heights (a nod);
- **off road**: the face turned away, from the nose's offset from the eye midpoint (BlazeFace keypoints), the
  fallback where there is no head pose (with one, :mod:`edgefer.edge.attention` times glances by zone);
- **degraded**: too dark or a blocked lens (mean and spread of the frame's grey level).

Timers use timestamps only, so replays at any frame rate give the same signals (tests replay without a clock).
The alert thresholds themselves are rules in the config (:mod:`edgefer.edge.alerts`), defaults in :func:`default_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgefer.edge.alerts import RuleConfig


class DrowsinessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed_below: float = Field(0.2, gt=0, lt=1, description="calibrated openness below this is closed (P80)")
    open_above: float = Field(0.35, gt=0, lt=1, description="... and open again only above this (hysteresis)")
    blink_max_s: float = Field(0.5, gt=0, le=2, description="a closure up to this long is a blink")
    perclos_window_s: float = Field(60.0, ge=5, le=600, description="PERCLOS sliding window")
    perclos_min_span_s: float = Field(30.0, ge=1, le=600, description="no PERCLOS reading before this much of a "
                                                                     "drive (one early blink is not 30 %)")
    blink_window_s: float = Field(60.0, ge=5, le=600, description="window for the blink rate")
    yawn_threshold: float = Field(0.5, gt=0, lt=1, description="yawn probability at or above which a yawn is on")
    yawn_min_s: float = Field(1.0, gt=0, le=10, description="a yawn must last this long to count")
    yawn_window_s: float = Field(300.0, ge=10, le=3600, description="window for counting yawns")
    calibration_s: float = Field(60.0, ge=0, le=1800, description="seconds with a face used to learn the driver's "
                                                                 "open-eye baseline and head height (0: none)")
    baseline_percentile: float = Field(80.0, ge=50, le=99, description="percentile of p(open) taken as fully open")
    min_baseline: float = Field(0.5, gt=0, le=1, description="the baseline never falls below this (a driver who "
                                                           "starts drowsy must not calibrate closed eyes as open)")
    dark_below: float = Field(25.0, ge=0, le=255, description="mean grey level under which the frame is too dark")
    blocked_spread_below: float = Field(6.0, ge=0, le=128, description="grey-level std under which the lens is "
                                                                      "taken as blocked")
    off_road_yaw: float = Field(0.45, gt=0, le=2, description="nose offset from the eye midpoint, in inter-ocular "
                                                            "distances, beyond which the face is turned away")


@dataclass(frozen=True)
class Calibration:
    samples: tuple[float, ...] = ()  # p(open) while calibrating
    heights: tuple[float, ...] = ()  # face centre y / frame height
    seconds: float = 0.0  # calibration time accumulated with a face
    baseline: float | None = None  # fixed once calibration ends
    head_y: float | None = None


@dataclass(frozen=True)
class DrowsyState:
    last_ts: float | None = None
    closed: bool = False
    closed_since: float | None = None
    closures: tuple[tuple[float, float], ...] = ()  # finished closures (start, end) within the PERCLOS window
    blinks: tuple[tuple[float, float], ...] = ()  # (end time, duration) of blinks within the blink window
    yawn_since: float | None = None
    yawns: tuple[float, ...] = ()  # start times of counted yawns within the yawn window
    yawn_counted: bool = False
    first_ts: float | None = None
    calibration: Calibration = field(default_factory=Calibration)
    openness: float | None = None  # calibrated openness of the last reading
    head_drop: float | None = None
    off_road: float | None = None
    dark: bool = False


@dataclass(frozen=True)
class Observation:  # one frame's readings; None where there is none
    eyes_open: float | None = None  # p(open), both eyes averaged; None: no reading (no face, no eye model)
    yawn: float | None = None
    face_box: tuple[float, float, float, float] | None = None
    keypoints: dict[str, tuple[float, float]] | None = None
    frame_height: int | None = None
    brightness: float | None = None  # mean grey level of the frame
    spread: float | None = None  # std of the grey level
    head_pose: tuple[float, float, float] | None = None  # (yaw, pitch, roll) degrees, AFLW2000's signs (headpose.py)


def _calibrate(cal: Calibration, obs: Observation, dt: float, cfg: DrowsinessConfig) -> Calibration:
    if cal.baseline is not None or obs.eyes_open is None and obs.face_box is None:
        return cal
    samples = cal.samples + ((obs.eyes_open,) if obs.eyes_open is not None else ())
    heights = cal.heights
    if obs.face_box is not None and obs.frame_height:
        heights += ((obs.face_box[1] + obs.face_box[3] / 2) / obs.frame_height,)
    seconds = cal.seconds + dt
    if seconds >= cfg.calibration_s and samples:
        baseline = max(cfg.min_baseline, float(np.percentile(samples, cfg.baseline_percentile)))
        head_y = float(np.median(heights)) if heights else None
        return Calibration((), (), seconds, baseline, head_y)
    return Calibration(samples, heights, seconds)


def baseline(state: DrowsyState, cfg: DrowsinessConfig) -> float:
    """The open-eye baseline in use: the learned one, or a provisional one while calibrating."""
    cal = state.calibration
    if cal.baseline is not None:
        return cal.baseline
    if len(cal.samples) >= 10:
        return max(cfg.min_baseline, float(np.percentile(cal.samples, cfg.baseline_percentile)))
    return 1.0


def _yaw(keypoints: dict[str, tuple[float, float]] | None) -> float | None:
    if not keypoints or not {"right_eye", "left_eye", "nose"} <= set(keypoints):
        return None
    (rx, ry), (lx, ly), (nx, _) = keypoints["right_eye"], keypoints["left_eye"], keypoints["nose"]
    iod = float(np.hypot(lx - rx, ly - ry))
    return abs(nx - (rx + lx) / 2) / iod if iod > 1 else None


def update(state: DrowsyState, obs: Observation, ts: float, cfg: DrowsinessConfig) -> DrowsyState:
    """One frame."""
    first = state.first_ts if state.first_ts is not None else ts
    dt = 0.0 if state.last_ts is None else max(0.0, ts - state.last_ts)
    cal = _calibrate(state.calibration, obs, dt if obs.face_box is not None else 0.0, cfg) \
        if cfg.calibration_s > 0 else replace(state.calibration, baseline=1.0)
    s = replace(state, last_ts=ts, first_ts=first, calibration=cal)

    dark = obs.brightness is not None and (obs.brightness < cfg.dark_below
                                           or (obs.spread or 0.0) < cfg.blocked_spread_below)
    if dark:  # no trustworthy eye or mouth reading in a frame this dark (and faces found in it are often not)
        obs = replace(obs, eyes_open=None, yawn=None)
    s = replace(s, dark=dark) if obs.brightness is not None else s

    # eyes: closure episodes with hysteresis on calibrated openness
    if obs.eyes_open is not None:
        openness = min(1.5, obs.eyes_open / baseline(s, cfg))
        s = replace(s, openness=openness)
        if not s.closed and openness < cfg.closed_below:
            s = replace(s, closed=True, closed_since=ts)
        elif s.closed and openness > cfg.open_above:
            start = s.closed_since if s.closed_since is not None else ts
            duration = ts - start
            s = replace(s, closed=False, closed_since=None, closures=s.closures + ((start, ts),))
            if duration <= cfg.blink_max_s:
                s = replace(s, blinks=s.blinks + ((ts, duration),))
    else:
        s = replace(s, openness=None)
    horizon = ts - cfg.perclos_window_s
    s = replace(s, closures=tuple(c for c in s.closures if c[1] > horizon),
                blinks=tuple(b for b in s.blinks if b[0] > ts - cfg.blink_window_s))

    # yawns: an episode counts once it has lasted yawn_min_s
    if obs.yawn is not None:
        if obs.yawn >= cfg.yawn_threshold:
            since = s.yawn_since if s.yawn_since is not None else ts
            s = replace(s, yawn_since=since)
            if not s.yawn_counted and ts - since >= cfg.yawn_min_s:
                s = replace(s, yawns=s.yawns + (since,), yawn_counted=True)
        else:
            s = replace(s, yawn_since=None, yawn_counted=False)
    s = replace(s, yawns=tuple(y for y in s.yawns if y > ts - cfg.yawn_window_s))

    # head and gaze from the face track
    head_drop = None
    if obs.face_box is not None and obs.frame_height and s.calibration.head_y is not None:
        x, y, w, h = obs.face_box
        head_drop = ((y + h / 2) / obs.frame_height - s.calibration.head_y) * obs.frame_height / max(h, 1.0)
    # the nose-offset ratio is the fallback for a monitor without head pose; with a pose the attention rules
    # (edge/attention.py) judge distraction, and this reads 0 so the two never raise for one look
    s = replace(s, head_drop=head_drop, off_road=_yaw(obs.keypoints) if obs.head_pose is None else 0.0)

    return s


def perclos(state: DrowsyState, ts: float, cfg: DrowsinessConfig) -> float:
    """Share of the window (or of the drive so far, if shorter) with the eyes at least 80 % closed."""
    if state.first_ts is None:
        return 0.0
    start = max(ts - cfg.perclos_window_s, state.first_ts)
    span = ts - start
    if span <= 0:
        return 0.0
    closed = sum(max(0.0, min(end, ts) - max(begin, start)) for begin, end in state.closures)
    if state.closed and state.closed_since is not None:
        closed += ts - max(state.closed_since, start)
    return min(1.0, closed / span)


#: The signal names :func:`signals` returns (rules may watch any of them).
SIGNALS = ("eye_closure", "eyes_closed_s", "perclos", "blink_rate_per_min", "mean_blink_s", "yawns_per_window",
           "head_drop", "off_road", "too_dark")


def signals(state: DrowsyState, ts: float, cfg: DrowsinessConfig) -> dict[str, float | None]:
    """Values for the alert rules; None where there is no reading this frame."""
    reading = state.openness is not None
    elapsed = ts - state.first_ts if state.first_ts is not None else 0.0
    blink_rate = len(state.blinks) * 60.0 / min(cfg.blink_window_s, max(elapsed, 1.0))
    return {
        "eye_closure": (1.0 if state.closed else 0.0) if reading else None,
        "eyes_closed_s": (ts - state.closed_since if state.closed and state.closed_since is not None else 0.0)
        if reading else None,
        "perclos": perclos(state, ts, cfg) if reading and state.first_ts is not None
        and ts - state.first_ts >= min(cfg.perclos_min_span_s, cfg.perclos_window_s) else None,
        "blink_rate_per_min": blink_rate,
        "mean_blink_s": float(np.mean([d for _, d in state.blinks])) if state.blinks else None,
        "yawns_per_window": float(len(state.yawns)),
        "head_drop": state.head_drop,
        "off_road": state.off_road,
        "too_dark": 1.0 if state.dark else 0.0,
    }


def default_rules() -> list[RuleConfig]:
    """Production / Euro NCAP practice: eyes closed >= 2 s warning (microsleep), >= 3 s urgent (sleep); face
    turned away >= 3 s distraction; drowsy on PERCLOS or yawns; warnings clear after 2 s of open eyes; a
    degraded monitor (too dark, blocked) is reported within 10 s."""
    return [
        RuleConfig(name="eyes_closed", signal="eye_closure", threshold=1.0, release=0.5, levels=[2.0, 3.0],
                   clear_after_s=2.0),
        RuleConfig(name="distraction", signal="off_road", threshold=DrowsinessConfig().off_road_yaw,
                   release=DrowsinessConfig().off_road_yaw * 0.7, levels=[3.0, 6.0], clear_after_s=2.0),
        RuleConfig(name="drowsy_perclos", signal="perclos", threshold=0.15, release=0.10, levels=[0.0, 30.0],
                   clear_after_s=10.0, cooldown_s=120.0),
        RuleConfig(name="drowsy_yawning", signal="yawns_per_window", threshold=3.0, release=2.0, levels=[0.0],
                   clear_after_s=10.0, cooldown_s=300.0),
        RuleConfig(name="head_nod", signal="head_drop", threshold=0.35, release=0.2, levels=[0.5, 2.0],
                   clear_after_s=2.0, cooldown_s=10.0),
        RuleConfig(name="monitor_degraded", signal="too_dark", threshold=1.0, release=0.5, levels=[5.0],
                   clear_after_s=2.0),
    ]
