"""Drowsiness signals and their alert timing, replayed without a clock."""

from __future__ import annotations

import pytest

from edgefer.edge.alerts import RuleState, step
from edgefer.edge.drowsiness import DrowsinessConfig, DrowsyState, Observation, default_rules, perclos, signals, update
from edgefer.edge.replay import ReplaySpec, run_replay, synthesise

RULES = {r.name: r for r in default_rules()}
EYE_RULES = [RULES["eyes_closed"], RULES["drowsy_perclos"]]


def test_normal_blinks_at_normal_rates_never_alert():
    for seed in range(3):  # 10 min each, blinks of 100-400 ms every 2-6 s, sensor noise
        events = run_replay(synthesise(ReplaySpec(seconds=600, seed=seed)), EYE_RULES)
        assert events == [], events


def test_microsleep_warning_and_sleep_urgent_within_one_frame():
    fps = 15.0
    spec = ReplaySpec(seconds=90, fps=fps, blink_every_s=(1000, 1000), closures=((70.0, 3.5),), noise=0.0)
    events = [e for e in run_replay(synthesise(spec), EYE_RULES) if e.rule == "eyes_closed"]
    kinds = [(e.kind, e.level) for e in events]
    assert kinds == [("raise", 1), ("escalate", 2), ("clear", 0)]
    assert 72.0 <= events[0].timestamp <= 72.0 + 1 / fps + 1e-9
    assert 73.0 <= events[1].timestamp <= 73.0 + 1 / fps + 1e-9
    assert 75.5 <= events[2].timestamp <= 75.5 + 1 / fps + 1e-9  # open and forward for 2 s


def test_timing_does_not_depend_on_the_frame_rate():
    def raised(fps: float) -> float:
        spec = ReplaySpec(seconds=40, fps=fps, blink_every_s=(1000, 1000), closures=((33.0, 2.5),), noise=0.0)
        return next(e.timestamp for e in run_replay(synthesise(spec), EYE_RULES) if e.kind == "raise")

    assert abs(raised(10.0) - raised(30.0)) <= 0.1 + 1e-9


def test_perclos_counts_time_closed_in_the_window():
    cfg = DrowsinessConfig(perclos_window_s=60, calibration_s=0)
    state = DrowsyState()
    for i in range(600):  # 60 s at 10 fps: eyes closed 1 s in every 5 s
        t = i / 10
        state = update(state, Observation(eyes_open=0.05 if t % 5 < 1 else 0.9), t, cfg)
    assert perclos(state, 59.9, cfg) == pytest.approx(0.2, abs=0.02)
    spec = ReplaySpec(seconds=120, blink_every_s=(4.0, 4.0), blink_s=(0.9, 0.9), noise=0.0)
    events = [e for e in run_replay(synthesise(spec), EYE_RULES) if e.rule == "drowsy_perclos"]
    assert events and events[0].kind == "raise" and events[0].timestamp >= 30.0  # no reading before 30 s


def test_blinks_are_timed_and_counted():
    cfg = DrowsinessConfig(calibration_s=0)
    state = DrowsyState()
    for i in range(600):  # 60 s at 10 fps, a 300 ms blink every 4 s
        t = i / 10
        state = update(state, Observation(eyes_open=0.02 if (t % 4) < 0.3 else 0.95), t, cfg)
    values = signals(state, 59.9, cfg)
    assert values["blink_rate_per_min"] == pytest.approx(15, abs=1)
    assert values["mean_blink_s"] == pytest.approx(0.3, abs=0.06)


def test_calibration_learns_a_dim_drivers_open_eyes():
    """Through glasses under IR the model may say p(open) 0.5 for open eyes: calibrated, 0.18 is not closed."""
    cfg = DrowsinessConfig(calibration_s=30)
    state = DrowsyState()
    for i in range(400):
        state = update(state, Observation(eyes_open=0.5, face_box=(100, 100, 120, 120), frame_height=360), i / 10, cfg)
    assert state.calibration.baseline == pytest.approx(0.5)
    state = update(state, Observation(eyes_open=0.08, face_box=(100, 100, 120, 120), frame_height=360), 40.1, cfg)
    assert state.closed
    uncalibrated = update(DrowsyState(), Observation(eyes_open=0.5), 0.0, DrowsinessConfig(calibration_s=0))
    assert not uncalibrated.closed
    # a driver who starts with closed eyes does not calibrate closed as open
    closed_start = DrowsyState()
    for i in range(400):
        closed_start = update(closed_start, Observation(eyes_open=0.05, face_box=(0, 0, 99, 99), frame_height=360),
                              i / 10, cfg)
    assert closed_start.calibration.baseline == cfg.min_baseline and closed_start.closed


def test_yawns_head_nod_distraction_and_darkness():
    cfg = DrowsinessConfig(calibration_s=5)
    state = DrowsyState()
    rule_states = {name: RuleState() for name in RULES}
    fired = []
    for i in range(3000):  # 300 s at 10 fps
        t = i / 10
        yawn = 0.9 if t % 60 < 2.0 and t > 10 else 0.1  # a 2 s yawn every minute after 10 s
        y = 150 if not 200 <= t < 203 else 215  # the head sinks by half a face height for 3 s
        kp = {"right_eye": (130.0, y + 40.0), "left_eye": (170.0, y + 40.0), "nose": (150.0, y + 60.0)}
        if 250 <= t < 255:  # looking out of the side window
            kp["nose"] = (175.0, y + 60.0)
        dark = 10.0 if 280 <= t < 290 else 100.0
        obs = Observation(eyes_open=0.9, yawn=yawn, face_box=(100, y, 100, 130), keypoints=kp, frame_height=360,
                          brightness=dark, spread=30.0)
        state = update(state, obs, t, cfg)
        values = signals(state, t, cfg)
        for name, rule in RULES.items():
            rule_states[name], events = step(rule_states[name], values.get(rule.signal), t, rule)
            fired += [(e.rule, e.kind, round(e.timestamp, 1)) for e in events]
    raises = {(r, round(ts)) for r, k, ts in fired if k == "raise"}
    assert ("drowsy_yawning", 181) in raises or ("drowsy_yawning", 182) in raises  # 3rd yawn counted at 181 s
    assert any(r == "head_nod" and 200 <= ts <= 201 for r, ts in raises)
    assert any(r == "distraction" and 253 <= ts <= 253.2 for r, ts in raises)
    assert any(r == "monitor_degraded" and 285 <= ts <= 285.2 for r, ts in raises)  # told within 10 s
    assert not any(r in ("eyes_closed", "drowsy_perclos") for r, _ in raises)


def test_frames_too_dark_give_no_eye_reading():
    cfg = DrowsinessConfig(calibration_s=0)
    state = DrowsyState()
    for i in range(50):  # 5 s of a dark frame in which a "face" reads closed: not a closure, but degraded
        state = update(state, Observation(eyes_open=0.05, brightness=12.0, spread=20.0), i / 10, cfg)
    values = signals(state, 4.9, cfg)
    assert not state.closed and values["eye_closure"] is None and values["too_dark"] == 1.0
    state = update(state, Observation(eyes_open=0.05, brightness=90.0, spread=3.0), 5.0, cfg)  # lens covered
    assert signals(state, 5.0, cfg)["too_dark"] == 1.0 and not state.closed
