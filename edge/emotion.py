"""Emotion signals that a tired driver at night does not trigger, as pure functions of (state, observation,
timestamp).

The expression model was trained on web photos of awake faces in good light. In a car it misreads three
things that have nothing to do with emotion: a **yawn** (the open mouth reads as fear or surprise, the squeezed
eyes as anger), **closed eyes** (read as sad), and a **dark** face (reads as fear or sad). And some faces simply
*rest* on "sad" or "angry". So the emotion signals the alert rules watch (``emotion.<label>``,
``emotion.distress``) differ from the plain smoothed probabilities (``expression.<label>``, ``distress``) in
three ways, each with its own switch:

- **evidence pause**: a frame gives no expression evidence while the yawn model reads a yawn or the eyes are
  closed (the drowsiness module's calibrated closure), nor for ``hold_off_s`` after such a spell that lasted
  ``episode_min_s`` (a yawn; talking and blinks only skip their own frames); the moving average is *held*, not
  fed, the signals read None, and the timers of the rules that watch them *stop* (:func:`step_rule`: a spell
  does not grow, nor an alert clear, on frames that say nothing about emotion);
- **light weighting**: a face crop darker than almost every training face gives no evidence, a dim one less
  (its reading moves the average more slowly);
- **the driver's own baseline**: over the first ``baseline_s`` seconds of evidence the per-class median
  probability is learned (like the open-eye baseline); the signal is the excess over it, as a share of the
  headroom left: ``(p - b) / (1 - b)``, so a driver whose resting face reads "sad" 0.4 must read 0.73 before
  the signal reaches 0.55. Until ``baseline_min_s`` seconds of evidence there is no baseline and no signal,
  so the rules cannot fire on a resting face before it is known.

With every switch off the signals equal ``expression.<label>`` and ``distress`` frame for frame (the tests
check it): that is the monitor's behaviour before this module, kept for comparison.

Time enters through timestamps only (evidence is weighted by seconds, not frames), so a replay at any frame
rate gives the same signals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgefer.edge.alerts import AlertEvent, RuleConfig, RuleState, step
from edgefer.edge.temporal import SmoothingConfig

#: Expressions whose sum is the ``distress`` signal (as edge/monitor.py's plain ``distress``).
DISTRESS = ("fear", "sad")
#: Resolution of the baseline's per-class histograms (probability bins of 0.01).
BASELINE_BINS = 100
#: While learning, the provisional baseline is recomputed once per this many seconds of evidence (not per frame).
BASELINE_REFRESH_S = 1.0


class EmotionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pause_on_yawn: bool = Field(True, description="no expression evidence while the yawn model reads a yawn (an "
                                                  "open mouth reads as fear or surprise)")
    yawn_pause_above: float = Field(0.5, gt=0, lt=1, description="p(yawn) at or above which a frame is a yawn "
                                                                 "(as drowsiness.yawn_threshold)")
    pause_on_closed_eyes: bool = Field(True, description="no expression evidence while the eyes are closed "
                                                         "(drowsiness' calibrated closure; closed eyes read as sad)")
    hold_off_s: float = Field(1.0, ge=0, le=10, description="after a yawn or closure of at least episode_min_s "
                                                            "the pause lasts this long more (the mouth closing "
                                                            "still reads as fear)")
    episode_min_s: float = Field(1.0, ge=0, le=10, description="a yawn or closure this long earns the hold-off (as "
                                                               "drowsiness.yawn_min_s; talking and blinks do not)")
    light_weighting: bool = Field(True, description="dark face crops give no evidence, dim ones less")
    dark_below: float = Field(45.0, ge=0, le=255, description="mean grey of the expression crop under which a frame "
                                                              "gives no evidence (darker than 99.5 % of FER2013 "
                                                              "training faces)")
    dim_below: float = Field(75.0, ge=0, le=255, description="from dark_below up to this mean grey the evidence "
                                                             "weight rises linearly to 1 (5 % of FER2013 training "
                                                             "faces are darker)")
    relative_to_baseline: bool = Field(True, description="signals are the excess over the driver's own resting "
                                                         "expression, (p - baseline) / (1 - baseline)")
    baseline_s: float = Field(60.0, ge=1, le=1800, description="seconds of evidence over which the resting "
                                                               "expression (per-class median) is learned")
    baseline_min_s: float = Field(5.0, ge=0, le=600, description="no emotion signal before this many seconds of "
                                                                 "evidence (a provisional median after it)")
    max_baseline: float = Field(0.9, gt=0, lt=1, description="a baseline is capped here, so a strong expression "
                                                             "can still exceed it")

    @model_validator(mode="after")
    def _consistent(self) -> EmotionConfig:
        if self.dim_below <= self.dark_below:
            raise ValueError(f"dim_below {self.dim_below} must exceed dark_below {self.dark_below}")
        if self.baseline_min_s > self.baseline_s:
            raise ValueError(f"baseline_min_s {self.baseline_min_s} must not exceed baseline_s {self.baseline_s}")
        return self

    @classmethod
    def off(cls) -> EmotionConfig:
        """Every mechanism off: the signals equal the plain smoothed probabilities (the behaviour before)."""
        return cls(pause_on_yawn=False, pause_on_closed_eyes=False, light_weighting=False,
                   relative_to_baseline=False)


@dataclass(frozen=True)
class ExpressionObservation:  # one frame's readings of the driver's face
    probs: np.ndarray | None = None  # expression probabilities; None: no face (or no expression model)
    yawn: float | None = None  # p(yawn) from the yawn model
    eyes_closed: bool = False  # the eyes read closed this frame (calibrated, with hysteresis)
    crop_mean: float | None = None  # mean grey level of the expression model's input crop


@dataclass(frozen=True)
class EmotionState:
    probs: np.ndarray | None = None  # smoothed probabilities, fed only by frames with evidence
    last_face: float | None = None  # timestamp of the last frame with a face
    pause_since: float | None = None  # start of the current run of yawn or closed-eye frames
    paused_until: float | None = None  # no evidence before this time (the hold-off after a long one)
    weight: float = 0.0  # evidence weight of the last frame (0: none)
    held_s: float = 0.0  # seconds the last frame (a face without evidence) held the rules' timers
    cause: str | None = None  # why the last frame with a face gave no evidence: yawn, eyes, hold-off, dark
    histogram: np.ndarray | None = None  # (classes, BASELINE_BINS) seconds of evidence per probability bin
    calibrated_s: float = 0.0  # seconds of evidence in the histogram
    baseline: np.ndarray | None = None  # per-class resting probabilities, fixed once calibrated
    provisional: np.ndarray | None = None  # the median so far, while learning (after baseline_min_s)


def light_weight(crop_mean: float | None, cfg: EmotionConfig) -> float:
    """Evidence weight of a face crop from its mean grey level: 0 when dark, 1 when lit, linear between."""
    if not cfg.light_weighting or crop_mean is None:
        return 1.0
    return float(np.clip((crop_mean - cfg.dark_below) / (cfg.dim_below - cfg.dark_below), 0.0, 1.0))


def weighted_median(histogram: np.ndarray) -> np.ndarray:
    """Per row of a (classes, bins) histogram over [0, 1]: the median, interpolated inside its bin (0 for an
    empty row)."""
    rows, bins = np.arange(histogram.shape[0]), histogram.shape[1]
    cumulative = np.cumsum(histogram, axis=1)
    half = cumulative[:, -1] / 2
    k = np.argmax(cumulative >= half[:, None], axis=1)  # the first bin that reaches half the weight
    before = np.where(k > 0, cumulative[rows, k - 1], 0.0)
    inside = histogram[rows, k]
    median = (k + (half - before) / np.where(inside > 0, inside, 1.0)) / bins
    return np.where(half > 0, median, 0.0)


def update(state: EmotionState, obs: ExpressionObservation, ts: float, cfg: EmotionConfig,
           smoothing: SmoothingConfig) -> EmotionState:
    """One frame."""
    if obs.probs is None:  # no face: the average is held, restarts after smoothing.max_gap_s; rule timers run
        return replace(state, weight=0.0, held_s=0.0, cause=None)
    probs = np.asarray(obs.probs, dtype=np.float64)
    restart = state.probs is None or state.last_face is None or ts - state.last_face > smoothing.max_gap_s
    dt = 0.0 if restart else max(ts - state.last_face, 0.0)

    yawning = cfg.pause_on_yawn and obs.yawn is not None and obs.yawn >= cfg.yawn_pause_above
    closed = cfg.pause_on_closed_eyes and obs.eyes_closed
    paused_until, pause_since = state.paused_until, None
    if yawning or closed:
        pause_since = state.pause_since if state.pause_since is not None else ts
        if ts - pause_since >= cfg.episode_min_s:  # a real yawn or closure, not talking or a blink
            paused_until = ts + cfg.hold_off_s
        cause: str | None = "yawn" if yawning else "eyes"
    elif paused_until is not None and ts < paused_until:
        cause = "hold-off"
    else:
        cause = None
    weight = 0.0 if cause else light_weight(obs.crop_mean, cfg)
    if weight == 0.0 and cause is None:
        cause = "dark"

    s = replace(state, last_face=ts, pause_since=pause_since, paused_until=paused_until, weight=weight,
                cause=cause, held_s=dt if weight == 0.0 else 0.0)
    if weight == 0.0:  # hold the average; a stale one (after a long gap) is dropped rather than held
        return replace(s, probs=None) if restart else s
    if restart:
        smoothed = probs
    else:
        keep = 0.5 ** (weight * dt / smoothing.half_life_s)
        smoothed = keep * state.probs + (1 - keep) * probs
    s = replace(s, probs=smoothed)

    if cfg.relative_to_baseline and s.baseline is None and dt > 0:
        histogram = np.zeros((probs.size, BASELINE_BINS)) if s.histogram is None else s.histogram.copy()
        index = np.minimum((np.clip(probs, 0.0, 1.0) * BASELINE_BINS).astype(int), BASELINE_BINS - 1)
        histogram[np.arange(probs.size), index] += weight * dt
        calibrated = s.calibrated_s + weight * dt
        if calibrated >= cfg.baseline_s:
            return replace(s, histogram=None, calibrated_s=calibrated, provisional=None,
                           baseline=np.minimum(weighted_median(histogram), cfg.max_baseline))
        provisional = s.provisional
        if calibrated >= cfg.baseline_min_s and (provisional is None or calibrated // BASELINE_REFRESH_S
                                                 != s.calibrated_s // BASELINE_REFRESH_S):
            provisional = np.minimum(weighted_median(histogram), cfg.max_baseline)
        s = replace(s, histogram=histogram, calibrated_s=calibrated, provisional=provisional)
    return s


def baseline(state: EmotionState, cfg: EmotionConfig) -> np.ndarray | None:
    """The resting expression in use: the learned one, a provisional median while learning (refreshed every
    ``BASELINE_REFRESH_S`` of evidence), or None before ``baseline_min_s`` seconds of evidence."""
    if state.baseline is not None:
        return state.baseline
    return state.provisional if state.calibrated_s >= cfg.baseline_min_s else None


def _excess(p: float, b: float) -> float:
    return max(0.0, (p - b) / (1.0 - b))


def signals(state: EmotionState, labels: list[str], cfg: EmotionConfig) -> dict[str, float | None]:
    """``emotion.<label>``, ``emotion.distress`` and ``emotion.evidence`` (this frame's weight); the emotion
    values are None when this frame gave no evidence or (relative) no baseline is known yet."""
    out: dict[str, float | None] = {"emotion.evidence": state.weight if state.last_face is not None else None}
    parts = [labels.index(k) for k in DISTRESS if k in labels]
    values: list[float | None] = [None] * len(labels)
    distress: float | None = None
    if state.probs is not None and state.weight > 0:
        p = state.probs
        if not cfg.relative_to_baseline:
            values = [float(v) for v in p]
            distress = float(sum(p[i] for i in parts)) if parts else None
        elif (b := baseline(state, cfg)) is not None:
            values = [_excess(float(p[i]), float(b[i])) for i in range(len(labels))]
            if parts:
                distress = _excess(float(sum(p[i] for i in parts)), min(float(sum(b[i] for i in parts)),
                                                                         cfg.max_baseline))
    out.update({f"emotion.{label}": values[i] for i, label in enumerate(labels)})
    out["emotion.distress"] = distress
    return out


def step_rule(state: RuleState, value: float | None, ts: float, rule: RuleConfig,
              held_s: float) -> tuple[RuleState, list[AlertEvent]]:
    """:func:`edgefer.edge.alerts.step` for a rule on an emotion signal: on a frame that held ``held_s`` seconds without
    evidence the rule's spell timers are shifted by that much instead (nothing turns on or off, raises,
    escalates or clears; the cooldown runs on)."""
    if held_s <= 0:
        return step(state, value, ts, rule)
    return replace(state, on_since=None if state.on_since is None else state.on_since + held_s,
                   off_since=None if state.off_since is None else state.off_since + held_s), []


def holds_rule(rule: RuleConfig) -> bool:
    """Whether a rule watches an emotion signal (and so stops while there is no evidence)."""
    return rule.signal.startswith("emotion.") and rule.signal != "emotion.evidence"


def signal_names(labels: list[str]) -> list[str]:
    return ["emotion.evidence", "emotion.distress", *(f"emotion.{label}" for label in labels)]

