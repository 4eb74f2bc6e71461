"""A synthesised tired driver at night, as the expression, yawn and eye models read one (issue 15), for tests and
``tools/emotion_alerts.py --synthetic``. Running it through :mod:`edgefer.edge.emotion` and the alert rules needs no
camera and no clock.
"""

from __future__ import annotations

import numpy as np

from edgefer.edge.alerts import AlertEvent, RuleConfig, RuleState
from edgefer.edge.emotion import EmotionConfig, EmotionState, ExpressionObservation, signals, step_rule, update
from edgefer.edge.temporal import SmoothingConfig

#: The expression labels of the shipped model, in its order.
EXPRESSION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def expression(**named: float) -> np.ndarray:
    """A probability vector over :data:`EXPRESSION_LABELS`: the named classes, the rest to neutral."""
    p = np.array([named.get(label, 0.0) for label in EXPRESSION_LABELS])
    p[EXPRESSION_LABELS.index("neutral")] += 1.0 - p.sum()
    return p


def night_driver(seed: int, minutes: float = 3.0, fps: float = 15.0) -> list[tuple[float, ExpressionObservation]]:
    """Issue 15's held-out night footage as the models read it, synthesised: between yawns the expression model
    reads fear or sad on most frames (sad 0.35-0.5, fear 0.15-0.3), through the yawns (4-7 s, every 15-40 s; the
    yawn model reads 0.6-0.95) angry or fear (angry 0.45-0.65, fear 0.2-0.35); blinks of 0.15 s (~18 a minute)
    and now and then a closure of 1-2 s, read as sad; a dim face (crop mean 50-90, an IR-lit cabin)."""
    rng = np.random.default_rng(seed)
    frames: list[tuple[float, ExpressionObservation]] = []
    t, next_yawn = 0.0, float(rng.uniform(8, 25))
    yawn_end = blink_end = closure_end = -1.0
    while t < minutes * 60:
        if t >= next_yawn:
            yawn_end, next_yawn = t + rng.uniform(4, 7), t + rng.uniform(15, 40)
        if rng.random() < 0.3 / fps:
            blink_end = t + 0.15
        if rng.random() < 0.02 / fps:
            closure_end = t + rng.uniform(1, 2)
        closed = t < blink_end or t < closure_end
        if t < yawn_end:
            p = expression(fear=float(rng.uniform(0.2, 0.35)), angry=float(rng.uniform(0.45, 0.65)), surprise=0.05)
            yawn = float(rng.uniform(0.6, 0.95))
        else:
            p = expression(sad=float(rng.uniform(0.35, 0.5)), fear=float(rng.uniform(0.15, 0.3)),
                           angry=float(rng.uniform(0.05, 0.15)))
            yawn = float(rng.uniform(0.05, 0.4))
        if closed:
            p = expression(sad=0.6, fear=0.2, angry=0.05)
        frames.append((t, ExpressionObservation(p, yawn=yawn, eyes_closed=closed,
                                                crop_mean=float(rng.uniform(50, 90)))))
        t += 1 / fps
    return frames


def run_emotion_replay(frames: list[tuple[float, ExpressionObservation]], rules: list[RuleConfig],
                       cfg: EmotionConfig, smoothing: SmoothingConfig | None = None, stop_timers: bool = True):
    """Every frame's emotion signals, the final state and the alert events, as the monitor computes them
    (``stop_timers`` False: plain :func:`edgefer.edge.alerts.step`, whose timers run on through frames without
    evidence)."""
    smoothing = smoothing or SmoothingConfig()
    state, rule_states = EmotionState(), {r.name: RuleState() for r in rules}
    values: list[tuple[float, dict[str, float | None]]] = []
    events: list[AlertEvent] = []
    for ts, obs in frames:
        state = update(state, obs, ts, cfg, smoothing)
        sig = signals(state, list(EXPRESSION_LABELS), cfg)
        values.append((ts, sig))
        for rule in rules:
            rule_states[rule.name], fired = step_rule(rule_states[rule.name], sig.get(rule.signal), ts, rule,
                                                      state.held_s if stop_timers else 0.0)
            events += fired
    return values, state, events
