"""Replays without a clock: signals and alert rules are pure functions of (state, observation, timestamp)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgefer.edge.alerts import RuleConfig, RuleState, step
from edgefer.edge.temporal import DriverState, SmoothingConfig, observe, seconds_without_face


def replay(rule: RuleConfig, samples: list[tuple[float, float | None]]):
    state, events = RuleState(), []
    for ts, value in samples:
        state, new = step(state, value, ts, rule)
        events += new
    return state, [(e.kind, e.level, round(e.timestamp, 3)) for e in events]


EYES = RuleConfig(name="eyes_closed", signal="closure", threshold=0.8, release=0.5, levels=[2.0, 3.0],
                  clear_after_s=2.0, cooldown_s=10.0)


def frames(fps: float, start: float, end: float, value: float):
    n = round((end - start) * fps)
    return [(start + i / fps, value) for i in range(n)]


def test_warning_then_urgent_within_one_frame_of_each_threshold():
    samples = frames(30, 0.0, 1.0, 0.0) + frames(30, 1.0, 5.0, 1.0)
    _, events = replay(EYES, samples)
    assert events[0][:2] == ("raise", 1) and 3.0 <= events[0][2] <= 3.0 + 1 / 30
    assert events[1][:2] == ("escalate", 2) and 4.0 <= events[1][2] <= 4.0 + 1 / 30
    assert len(events) == 2


def test_normal_blinks_never_alert():
    samples = []
    t = 0.0
    while t < 60:  # a 300 ms blink every 4 s
        samples += frames(30, t, t + 0.3, 1.0) + frames(30, t + 0.3, t + 4.0, 0.0)
        t += 4.0
    state, events = replay(EYES, samples)
    assert events == [] and state.level == 0


def test_hysteresis_keeps_the_spell_and_clear_needs_two_seconds_off():
    samples = (frames(10, 0, 1.5, 1.0) + frames(10, 1.5, 2.5, 0.6)  # 0.6: between release and threshold
               + frames(10, 2.5, 3.0, 0.0) + frames(10, 3.0, 6.0, 0.0))
    _, events = replay(EYES, samples)
    assert events[0][:2] == ("raise", 1) and events[0][2] == pytest.approx(2.0)
    assert events[1][:2] == ("clear", 0) and events[1][2] == pytest.approx(4.5)


def test_cooldown_suppresses_a_quick_second_raise():
    first = frames(10, 0, 2.5, 1.0) + frames(10, 2.5, 5.0, 0.0)
    again = frames(10, 5.0, 8.0, 1.0) + frames(10, 8.0, 10.0, 0.0) + frames(10, 12.0, 15.0, 1.0)
    _, events = replay(EYES, first + again)
    raises = [e for e in events if e[0] == "raise"]
    assert [r[2] for r in raises] == [pytest.approx(2.0), pytest.approx(14.0)]


def test_missing_readings_do_not_turn_a_rule_on_or_off():
    samples = frames(10, 0, 1.0, 1.0) + [(1.0 + i / 10, None) for i in range(15)] + frames(10, 2.5, 3.0, 1.0)
    _, events = replay(EYES, samples)
    assert events[0][:2] == ("raise", 1) and events[0][2] == pytest.approx(2.0)


def test_rule_config_is_validated():
    with pytest.raises(ValidationError, match="release 0.9 must not exceed threshold 0.5"):
        RuleConfig(name="x", signal="s", threshold=0.5, release=0.9, levels=[1.0])
    with pytest.raises(ValidationError, match="ascending"):
        RuleConfig(name="x", signal="s", threshold=0.5, release=0.4, levels=[3.0, 2.0])
    with pytest.raises(ValidationError, match="extra"):
        RuleConfig(name="x", signal="s", threshold=0.5, release=0.4, levels=[1.0], colour="red")


def test_smoothing_is_frame_rate_independent():
    cfg = SmoothingConfig(half_life_s=0.5)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])

    def run(fps: float) -> np.ndarray:
        state = observe(DriverState(), a, 0.0, cfg)
        for i in range(1, round(fps) + 1):
            state = observe(state, b, i / fps, cfg)
        return state.probs

    slow, fast = run(10), run(30)
    assert np.allclose(slow, fast, atol=1e-9)
    assert slow[0] == pytest.approx(0.25)  # two half-lives in one second


def test_seconds_without_face_and_restart_after_a_gap():
    cfg = SmoothingConfig(half_life_s=0.5, max_gap_s=2.0)
    state = observe(DriverState(), None, 10.0, cfg)
    assert seconds_without_face(state, 11.5) == pytest.approx(1.5)
    state = observe(state, np.array([0.2, 0.8]), 12.0, cfg)
    state = observe(state, None, 12.5, cfg)
    assert seconds_without_face(state, 13.0) == pytest.approx(1.0)
    state = observe(state, np.array([1.0, 0.0]), 20.0, cfg)  # after a long gap: no stale average
    assert np.allclose(state.probs, [1.0, 0.0])
