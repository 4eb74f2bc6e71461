"""Where the driver looks, and for how long: attention zones and glance timers from head pose, as pure functions
of (state, observation, timestamp) like :mod:`edgefer.edge.drowsiness`.

Head pose is (yaw, pitch, roll) in degrees with AFLW2000's signs: yaw > 0 the driver turns to *their* right,
pitch > 0 up. It is taken relative to the driver's own **road-ahead direction**, learned while driving like the
open-eye baseline: the median yaw and pitch over the first ``calibration_s`` seconds with a pose, ignoring
samples far from the nominal direction (mirror and console glances) and then, in a second pass, samples far
from the first median; once learned it follows the driver slowly (``adapt_half_life_s``, road frames only).
Until enough samples are in, the nominal direction is used, then the median so far (refreshed every
:data:`PROVISIONAL_EVERY` samples).

**Zones** are boxes in (yaw, pitch) around that direction, set in the config for a left-hand-drive car (the
driver sits on the left: the near mirror is on their left, the console on their right); ``right_hand_drive``
mirrors yaw and swaps the mirror names. The first box that holds the pose wins, in the order of :data:`ZONES`;
no box is ``away``. A pose stays in its zone until it leaves the box by more than ``hysteresis_deg``.

**Glances**: a glance (a "spell") starts when the driver leaves ``road_ahead`` and ends once they have looked at
the road for ``road_min_s``. Mirrors and the instrument cluster are on-task (Euro NCAP): a stretch of them up to
``on_task_max_s`` costs nothing. A spell becomes *distracted* when it reaches ``away`` or an on-task stretch
outlasts ``on_task_max_s``; it is a *phone look* when it reaches the centre console or the lap first. Each spell
is one of the two, so one look raises one alert, not both:

- ``glance_away_s``: seconds since a distracted spell began (0 otherwise) -> ``distraction_long``;
- ``phone_look_s``: seconds since a phone-look spell began (0 otherwise) -> ``phone_use``;
- ``off_road_window_s``: seconds of distracted and phone-look spells in the last ``window_s``; and
  ``time_sharing_s``, the same but only while such a spell lasts (0 on the road) -> visual attention
  time-sharing, ``distraction_vats``: it warns during the glance that crosses the limit and clears once the
  driver is back on the road, instead of staying on while the window slowly empties.

Only timestamps are used, so any frame rate gives the same signals (tests replay synthetic poses, no clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgefer.edge.alerts import RuleConfig
from edgefer.edge.drowsiness import Observation

#: Zones in the order they are tried; ``away`` is where no box holds the pose.
ZONES = ("road_ahead", "instrument_cluster", "left_mirror", "right_mirror", "centre_console", "lap", "away")
ON_TASK = frozenset({"instrument_cluster", "left_mirror", "right_mirror"})
PHONE = frozenset({"centre_console", "lap"})


class ZoneBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaw_min: float = Field(ge=-180, le=180, description="degrees from road ahead, + is the driver's right")
    yaw_max: float = Field(ge=-180, le=180, description="... up to this yaw")
    pitch_min: float = Field(ge=-90, le=90, description="degrees from road ahead, + is up")
    pitch_max: float = Field(ge=-90, le=90, description="... up to this pitch")

    @model_validator(mode="after")
    def _ordered(self) -> ZoneBox:
        if self.yaw_min >= self.yaw_max:
            raise ValueError(f"yaw_min {self.yaw_min} must be below yaw_max {self.yaw_max}")
        if self.pitch_min >= self.pitch_max:
            raise ValueError(f"pitch_min {self.pitch_min} must be below pitch_max {self.pitch_max}")
        return self

    def holds(self, yaw: float, pitch: float, margin: float = 0.0) -> bool:
        return (self.yaw_min - margin <= yaw <= self.yaw_max + margin
                and self.pitch_min - margin <= pitch <= self.pitch_max + margin)


def _box(yaw_min: float, yaw_max: float, pitch_min: float, pitch_max: float) -> ZoneBox:
    return ZoneBox(yaw_min=yaw_min, yaw_max=yaw_max, pitch_min=pitch_min, pitch_max=pitch_max)


class AttentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Head pose, not gaze: the eyes do part of every look, so a head turns only some 60-70 % of the way to a
    # mirror. The boxes are head angles for a left-hand-drive car with the camera in front of the driver.
    road_ahead: ZoneBox = Field(default_factory=lambda: _box(-15, 15, -10, 12),
                                description="looking at the road (centred on the calibrated direction)")
    instrument_cluster: ZoneBox = Field(default_factory=lambda: _box(-15, 12, -28, -10),
                                        description="the instruments behind the wheel (on-task)")
    left_mirror: ZoneBox = Field(default_factory=lambda: _box(-65, -25, -15, 12),
                                 description="the left door mirror (on-task; the near one in a left-hand drive)")
    right_mirror: ZoneBox = Field(default_factory=lambda: _box(28, 65, -15, 12),
                                  description="the right door mirror (on-task; across the car)")
    centre_console: ZoneBox = Field(default_factory=lambda: _box(12, 50, -55, -10),
                                    description="the centre console and its screen (a phone look)")
    lap: ZoneBox = Field(default_factory=lambda: _box(-20, 12, -80, -28),
                         description="the lap, where a phone is held low (a phone look)")
    right_hand_drive: bool = Field(False, description="the driver sits on the right: yaw is mirrored before the "
                                                      "zones are looked up, and left/right mirror swap names")
    hysteresis_deg: float = Field(3.0, ge=0, le=15, description="a pose leaves its zone only this far outside it")
    nominal_yaw_deg: float = Field(0.0, ge=-60, le=60, description="road-ahead yaw before calibration (the "
                                                                   "camera's mounting angle)")
    nominal_pitch_deg: float = Field(0.0, ge=-60, le=60, description="road-ahead pitch before calibration")
    calibration_s: float = Field(20.0, ge=0, le=1800, description="seconds with a head pose used to learn the "
                                                                  "driver's road-ahead direction (0: nominal)")
    calibration_max_offset_deg: float = Field(25.0, gt=0, le=90, description="samples farther than this from the "
                                                                             "nominal direction are not the road")
    calibration_inlier_deg: float = Field(10.0, gt=0, le=90, description="second pass: only samples this close "
                                                                         "to the first median")
    calibration_min_samples: int = Field(15, ge=1, le=10000, description="samples before the median so far "
                                                                         "replaces the nominal direction")
    adapt_half_life_s: float = Field(600.0, ge=0, le=36000, description="after calibration the direction follows "
                                                                        "road-ahead poses with this half-life "
                                                                        "(0: fixed)")
    on_task_max_s: float = Field(2.0, gt=0, le=10, description="mirror and instrument glances up to this long "
                                                               "cost nothing (Euro NCAP on-task glances)")
    road_min_s: float = Field(0.2, ge=0, le=2, description="a look back at the road shorter than this does not "
                                                           "end the glance")
    max_gap_s: float = Field(1.0, gt=0, le=10, description="a glance ends when no pose comes for this long")
    window_s: float = Field(30.0, ge=5, le=600, description="window for cumulative off-road time (VATS)")

    def boxes(self) -> list[tuple[str, ZoneBox]]:
        return [(name, getattr(self, name)) for name in ZONES[:-1]]


@dataclass(frozen=True)
class RoadCalibration:
    samples: tuple[tuple[float, float], ...] = ()  # (yaw, pitch) while calibrating, outliers already left out
    seconds: float = 0.0  # calibration time accumulated with a pose
    centre: tuple[float, float] | None = None  # learned road-ahead (yaw, pitch); set when calibration ends
    provisional: tuple[float, float] | None = None  # the median so far, refreshed every PROVISIONAL_EVERY samples


@dataclass(frozen=True)
class AttentionState:
    last_pose_ts: float | None = None
    calibration: RoadCalibration = field(default_factory=RoadCalibration)
    yaw: float | None = None  # relative to road ahead, this frame
    pitch: float | None = None
    zone: str | None = None  # this frame's zone; None: no pose now
    held_zone: str | None = None  # the zone of the last pose (for hysteresis across gaps)
    spell_since: float | None = None  # when the driver left the road (None: on the road)
    task_since: float | None = None  # start of the current on-task stretch within the spell
    distracted: bool = False
    phone: bool = False
    road_since: float | None = None  # back on the road at (the spell ends after road_min_s)
    off_road: tuple[tuple[float, float], ...] = ()  # counted spells (start, end) within the window


#: The provisional direction is recomputed every this many samples, not every frame (a median per frame over a
#: growing list cost ~1 ms a frame here while calibrating).
PROVISIONAL_EVERY = 15


def robust_centre(samples: tuple[tuple[float, float], ...] | list, inlier_deg: float) -> tuple[float, float]:
    """Median yaw and pitch, then the median again of the samples within ``inlier_deg`` of it."""
    arr = np.asarray(samples, dtype=np.float64)
    first = np.median(arr, axis=0)
    near = arr[np.all(np.abs(arr - first) <= inlier_deg, axis=1)]
    centre = np.median(near, axis=0) if len(near) else first
    return float(centre[0]), float(centre[1])


def road_direction(state: AttentionState, cfg: AttentionConfig) -> tuple[float, float]:
    """The road-ahead (yaw, pitch) in use: learned, provisional (the median so far) or nominal."""
    cal = state.calibration
    if cal.centre is not None:
        return cal.centre
    if cal.provisional is not None:
        return cal.provisional
    return cfg.nominal_yaw_deg, cfg.nominal_pitch_deg


def _calibrate(cal: RoadCalibration, yaw: float, pitch: float, dt: float, cfg: AttentionConfig) -> RoadCalibration:
    if cal.centre is not None:
        return cal
    if cfg.calibration_s == 0:
        return RoadCalibration(centre=(cfg.nominal_yaw_deg, cfg.nominal_pitch_deg))
    samples, provisional = cal.samples, cal.provisional
    if max(abs(yaw - cfg.nominal_yaw_deg), abs(pitch - cfg.nominal_pitch_deg)) <= cfg.calibration_max_offset_deg:
        samples += ((yaw, pitch),)
        due = len(samples) >= cfg.calibration_min_samples and (
            provisional is None or (len(samples) - cfg.calibration_min_samples) % PROVISIONAL_EVERY == 0)
        if due:
            provisional = robust_centre(samples, cfg.calibration_inlier_deg)
    seconds = cal.seconds + dt
    if seconds >= cfg.calibration_s:
        centre = robust_centre(samples, cfg.calibration_inlier_deg) if samples \
            else (cfg.nominal_yaw_deg, cfg.nominal_pitch_deg)
        return RoadCalibration((), seconds, centre)
    return RoadCalibration(samples, seconds, None, provisional)


def classify(yaw: float, pitch: float, cfg: AttentionConfig, previous: str | None = None) -> str:
    """The zone of a pose relative to road ahead (a pose still near ``previous`` stays there)."""
    if cfg.right_hand_drive:
        yaw = -yaw
    boxes = cfg.boxes()
    if previous is not None and previous != "away":
        lhd = _swap_mirror(previous) if cfg.right_hand_drive else previous
        if getattr(cfg, lhd).holds(yaw, pitch, cfg.hysteresis_deg):
            return previous
    zone = next((name for name, box in boxes if box.holds(yaw, pitch)), "away")
    return _swap_mirror(zone) if cfg.right_hand_drive else zone


def zone_of_pose(pose: tuple[float, float, float], cfg: AttentionConfig) -> str:
    """The zone of one pose with no drive behind it (a single image, ``analyze``): relative to the nominal
    road-ahead direction, no hysteresis."""
    return classify(pose[0] - cfg.nominal_yaw_deg, pose[1] - cfg.nominal_pitch_deg, cfg)


def _swap_mirror(zone: str) -> str:
    return {"left_mirror": "right_mirror", "right_mirror": "left_mirror"}.get(zone, zone)


def _end_spell(s: AttentionState, end: float, cfg: AttentionConfig) -> AttentionState:
    assert s.spell_since is not None
    counted = s.distracted or s.phone or end - s.spell_since > cfg.on_task_max_s
    return replace(s, spell_since=None, task_since=None, distracted=False, phone=False, road_since=None,
                   off_road=s.off_road + ((s.spell_since, end),) if counted and end > s.spell_since else s.off_road)


def update(state: AttentionState, obs: Observation, ts: float, cfg: AttentionConfig) -> AttentionState:
    """One frame. ``obs.head_pose`` None (no face, no estimator): no reading, timers keep their state."""
    s = state
    if s.spell_since is not None and s.last_pose_ts is not None and ts - s.last_pose_ts > cfg.max_gap_s:
        s = _end_spell(s, s.last_pose_ts, cfg)  # lost the pose for long: that glance is over where it was seen
    if s.last_pose_ts is not None and ts - s.last_pose_ts > cfg.max_gap_s:
        s = replace(s, held_zone=None)
    s = replace(s, off_road=tuple(p for p in s.off_road if p[1] > ts - cfg.window_s))
    if obs.head_pose is None:
        return replace(s, yaw=None, pitch=None, zone=None)

    raw_yaw, raw_pitch = float(obs.head_pose[0]), float(obs.head_pose[1])
    dt = 0.0 if s.last_pose_ts is None else min(max(0.0, ts - s.last_pose_ts), cfg.max_gap_s)
    s = replace(s, calibration=_calibrate(s.calibration, raw_yaw, raw_pitch, dt, cfg), last_pose_ts=ts)
    road_yaw, road_pitch = road_direction(s, cfg)
    yaw, pitch = raw_yaw - road_yaw, raw_pitch - road_pitch
    zone = classify(yaw, pitch, cfg, s.held_zone)
    s = replace(s, yaw=yaw, pitch=pitch, zone=zone, held_zone=zone)

    cal = s.calibration
    if zone == "road_ahead" and cal.centre is not None and cfg.adapt_half_life_s > 0 and dt > 0:
        w = 1.0 - 0.5 ** (dt / cfg.adapt_half_life_s)
        s = replace(s, calibration=replace(cal, centre=(road_yaw + w * yaw, road_pitch + w * pitch)))

    if zone == "road_ahead":
        if s.spell_since is not None:
            road_since = s.road_since if s.road_since is not None else ts
            s = replace(s, road_since=road_since)
            if ts - road_since >= cfg.road_min_s:
                s = _end_spell(s, road_since, cfg)
        return s

    if s.spell_since is None:
        s = replace(s, spell_since=ts)
    s = replace(s, road_since=None)
    if zone in ON_TASK:
        task_since = s.task_since if s.task_since is not None else ts
        s = replace(s, task_since=task_since)
        if ts - task_since > cfg.on_task_max_s:
            s = replace(s, distracted=True)
    else:
        s = replace(s, task_since=None)
        if zone == "away":
            s = replace(s, distracted=True)
        elif not s.distracted:
            s = replace(s, phone=True)
    return s


def off_road_seconds(state: AttentionState, ts: float, cfg: AttentionConfig) -> float:
    """Seconds of counted glances (distracted or phone looks) in the last ``window_s``."""
    horizon = ts - cfg.window_s
    total = float(sum(max(0.0, end - max(start, horizon)) for start, end in state.off_road))
    if state.spell_since is not None and (state.distracted or state.phone):
        end = state.road_since if state.road_since is not None else ts
        total += max(0.0, end - max(state.spell_since, horizon))
    return total


#: The signal names :func:`signals` returns.
SIGNALS = ("glance_away_s", "phone_look_s", "off_road_window_s", "time_sharing_s", "head_yaw", "head_pitch")


def signals(state: AttentionState, ts: float, cfg: AttentionConfig) -> dict[str, float | None]:
    """Values for the alert rules; None where there is no pose this frame."""
    posed = state.zone is not None
    looking_away = posed and state.spell_since is not None and state.road_since is None
    spell = ts - state.spell_since if looking_away and state.spell_since is not None else 0.0
    window = off_road_seconds(state, ts, cfg)
    counted = looking_away and (state.distracted or state.phone)
    return {
        "glance_away_s": (spell if state.distracted else 0.0) if posed else None,
        "phone_look_s": (spell if state.phone and not state.distracted else 0.0) if posed else None,
        "off_road_window_s": window,
        "time_sharing_s": (window if counted else 0.0) if posed else None,
        "head_yaw": state.yaw,
        "head_pitch": state.pitch,
    }


def default_rules() -> list[RuleConfig]:
    """Euro NCAP's distraction cases: one glance off the road >= 3 s (long distraction); glances adding up to
    10 s within 30 s (visual attention time-sharing); a look at a phone on the console or lap >= 3 s. Mirror
    and instrument checks up to 2 s never count (``on_task_max_s``)."""
    return [
        RuleConfig(name="distraction_long", signal="glance_away_s", threshold=3.0, release=0.5, levels=[0.0, 3.0],
                   clear_after_s=2.0),
        RuleConfig(name="distraction_vats", signal="time_sharing_s", threshold=10.0, release=0.5, levels=[0.0],
                   clear_after_s=2.0, cooldown_s=30.0),
        RuleConfig(name="phone_use", signal="phone_look_s", threshold=3.0, release=0.5, levels=[0.0, 3.0],
                   clear_after_s=2.0),
    ]
