"""Emotion signals replayed without a clock: the pause on yawns and closed eyes, the hold-off, light weighting and
the driver's baseline (edge/emotion.py), on synthetic observation sequences."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgefer.edge import config, emotion
from edgefer.edge.alerts import RuleState
from edgefer.edge.emotion import (
    EmotionConfig,
    EmotionState,
    ExpressionObservation,
    baseline,
    light_weight,
    signals,
    update,
)
from edgefer.edge.emotion_replay import EXPRESSION_LABELS, expression, night_driver, run_emotion_replay
from edgefer.edge.temporal import DriverState, SmoothingConfig, observe

LABELS = list(EXPRESSION_LABELS)
SMOOTH = SmoothingConfig()
RULES = [r for r in config.default_rules() if emotion.holds_rule(r)]  # anger, distress


probs = expression


NEUTRAL = probs(neutral=0.9, sad=0.05, angry=0.05)
YAWN_FACE = probs(fear=0.6, sad=0.05, angry=0.25, surprise=0.05)  # what the model reads through a yawn (the issue)


def replay(frames: list[tuple[float, ExpressionObservation]], cfg: EmotionConfig, stop_timers: bool = True):
    """Every frame's emotion signals, the final state and the (rule, kind, timestamp) events of the default
    emotion rules."""
    values, state, events = run_emotion_replay(frames, RULES, cfg, SMOOTH, stop_timers)
    return values, state, [(e.rule, e.kind, round(e.timestamp, 3)) for e in events]


def stretch(start: float, end: float, p: np.ndarray, fps: float = 10.0, **obs) -> list:
    n = round((end - start) * fps)
    return [(start + i / fps, ExpressionObservation(p, **obs)) for i in range(n)]


def test_with_every_switch_off_the_signals_are_the_plain_ema_frame_for_frame():
    rng = np.random.default_rng(0)
    off = EmotionConfig.off()
    state, plain = EmotionState(), DriverState()
    for i in range(400):
        ts = i / 15
        visible = not 100 <= i < 160  # a 4 s gap without a face: both restart the average
        p = rng.dirichlet(np.ones(len(LABELS)))
        obs = ExpressionObservation(p, yawn=float(rng.random()), eyes_closed=bool(rng.random() < 0.2),
                                    crop_mean=float(rng.uniform(0, 255))) if visible else ExpressionObservation()
        state = update(state, obs, ts, off, SMOOTH)
        plain = observe(plain, p if visible else None, ts, SMOOTH)
        sig = signals(state, LABELS, off)
        if not visible:
            assert sig["emotion.angry"] is None and sig["emotion.distress"] is None
            continue
        assert [sig[f"emotion.{k}"] for k in LABELS] == [float(v) for v in plain.probs]
        assert sig["emotion.distress"] == float(plain.probs[2] + plain.probs[4])


def test_a_yawn_holds_the_average_then_the_hold_off_keeps_it_held():
    cfg = EmotionConfig(relative_to_baseline=False, light_weighting=False)
    frames = stretch(0, 10, NEUTRAL) + stretch(10, 16, YAWN_FACE, yawn=0.9) + stretch(16, 20, NEUTRAL)
    values, state, events = replay(frames, cfg)
    held = dict(values)[9.9]["emotion.neutral"]
    for ts, sig in values:  # the last yawn frame is at 15.9 s: the hold-off runs to 16.9 s
        if 10.0 <= ts < 16.9 - 1e-9:
            assert sig["emotion.neutral"] is None and sig["emotion.evidence"] == 0.0
        elif ts >= 16.9 - 1e-9:
            assert sig["emotion.neutral"] is not None
    first_after = next(sig for ts, sig in values if ts >= 16.9 - 1e-9)
    keep = 0.5 ** (0.1 / SMOOTH.half_life_s)  # one frame's interval: fed, not restarted
    assert first_after["emotion.neutral"] == pytest.approx(held * keep + (1 - keep) * NEUTRAL[-1])
    assert events == []
    # before: the same replay raises distress through the yawn, 4 s after the average crosses 0.55
    _, _, before = replay(frames, EmotionConfig.off())
    assert [e[:2] for e in before] == [("distress", "raise"), ("distress", "clear")]
    assert 14.5 <= before[0][2] <= 15.5


def test_a_spell_that_began_before_a_yawn_does_not_ripen_during_it():
    cfg = EmotionConfig(relative_to_baseline=False, light_weighting=False)
    frames = (stretch(0, 10, NEUTRAL) + stretch(10, 12, probs(sad=0.9)) + stretch(12, 18, YAWN_FACE, yawn=0.9)
              + stretch(18, 25, NEUTRAL))
    _, _, running = replay(frames, cfg, stop_timers=False)
    assert [e[:2] for e in running] == [("distress", "raise"), ("distress", "clear")]
    assert 12.0 < running[0][2] < 18.0  # raised in the middle of the yawn, on 1.4 s of evidence
    _, _, stopped = replay(frames, cfg)
    assert stopped == []  # the spell's 1.4 s on, then the pause, then released on the neutral face


def test_step_rule_shifts_the_timers_on_held_frames():
    rule = next(r for r in RULES if r.name == "distress")
    state = RuleState(on_since=10.0, off_since=None, level=0, last_raise=-40.0)
    held, events = emotion.step_rule(state, None, 20.0, rule, 0.5)
    assert events == [] and held == RuleState(on_since=10.5, off_since=None, level=0, last_raise=-40.0)
    assert emotion.step_rule(state, 0.9, 20.0, rule, 0.0)[1][0].kind == "raise"


def test_the_hold_off_follows_only_a_long_yawn_or_closure():
    cfg = EmotionConfig(relative_to_baseline=False, light_weighting=False)
    talking = []
    for k in range(20):  # a mouth open 0.3 s in every 0.6 s reads as a yawn frame by frame
        t = 2.0 + 0.6 * k
        talking += stretch(t, t + 0.3, YAWN_FACE, yawn=0.7) + stretch(t + 0.3, t + 0.6, NEUTRAL, yawn=0.2)
    values, state, _ = replay(stretch(0, 2, NEUTRAL) + talking, cfg)
    fed = [ts for ts, sig in values if sig["emotion.fear"] is not None]
    assert len(fed) == 20 + 20 * 3  # every frame but the open-mouth ones: no hold-off after talking
    assert state.probs[LABELS.index("fear")] == pytest.approx(0.0)
    blinks = []
    for k in range(10):  # a 0.2 s blink every 3 s
        blinks += stretch(3.0 * k, 3.0 * k + 0.2, NEUTRAL, eyes_closed=True) + stretch(3.0 * k + 0.2, 3.0 * k + 3.0,
                                                                                      NEUTRAL)
    values, _, _ = replay(blinks, cfg)
    assert sum(sig["emotion.neutral"] is None for _, sig in values) == 10 * 2
    closure = stretch(0, 2, NEUTRAL) + stretch(2, 4, probs(sad=0.8), eyes_closed=True) + stretch(4, 6, NEUTRAL)
    values, _, _ = replay(closure, cfg)
    paused = [round(ts, 1) for ts, sig in values if sig["emotion.sad"] is None]
    assert paused[0] == 2.0 and paused[-1] == 4.8  # the closure (last closed frame 3.9 s) and 1 s after it


def test_the_pause_does_not_depend_on_the_frame_rate():
    cfg = EmotionConfig(light_weighting=False, baseline_s=20, baseline_min_s=5)

    def final(fps: float) -> np.ndarray:
        frames = (stretch(0, 30, probs(sad=0.4, fear=0.1), fps) + stretch(30, 34, YAWN_FACE, fps, yawn=0.9)
                  + stretch(34, 40, probs(sad=0.5, fear=0.1), fps))
        _, state, _ = replay(frames, cfg)
        return np.concatenate([state.probs, state.baseline])

    assert np.allclose(final(10), final(30), atol=2e-3)


def test_a_resting_sad_face_is_the_baseline_and_real_distress_still_fires():
    rng = np.random.default_rng(1)
    resting = [(i / 10, ExpressionObservation(probs(sad=0.45 + 0.05 * rng.standard_normal(), fear=0.15)))
               for i in range(1200)]  # 120 s; fear + sad 0.6 is over the distress threshold of 0.55
    cfg = EmotionConfig(light_weighting=False)
    values, state, events = replay(resting, cfg)
    assert events == []
    assert state.baseline is not None and state.baseline[LABELS.index("sad")] == pytest.approx(0.45, abs=0.02)
    _, _, before = replay(resting, EmotionConfig.off())
    assert [e[:2] for e in before] == [("distress", "raise"), ("distress", "escalate")]  # and never clears
    # after calibration, a real spell of distress (sad 0.9) for 10 s raises at level 1 within 4 s plus the lag
    upset = stretch(120, 130, probs(sad=0.9, fear=0.05)) + stretch(130, 140, probs(sad=0.45, fear=0.15))
    _, _, events = replay(resting + upset, cfg)
    raised = [e for e in events if e[1] == "raise"]
    assert len(raised) == 1 and raised[0][0] == "distress" and 124.0 <= raised[0][2] <= 125.0


def test_no_emotion_signal_before_the_baseline_has_its_minimum_evidence():
    cfg = EmotionConfig(light_weighting=False, baseline_min_s=5.0)
    frames = stretch(0, 3, probs(sad=0.9), yawn=0.0) + stretch(3, 6, probs(sad=0.9), yawn=0.9) \
        + stretch(6, 12, probs(sad=0.9))
    values, state, events = replay(frames, cfg)
    first = next(ts for ts, sig in values if sig["emotion.sad"] is not None)
    # 2.9 s of evidence (the first frame has no interval before it), a 3 s yawn and the 1 s hold-off after its
    # last frame (5.9 s) that give none, then 2.1 s more
    assert first == pytest.approx(8.9, abs=1e-9)
    assert events == [] and baseline(state, cfg) is not None


def test_dark_crops_give_no_evidence_and_dim_ones_weigh_less():
    cfg = EmotionConfig(relative_to_baseline=False)
    assert light_weight(20.0, cfg) == 0.0 and light_weight(60.0, cfg) == pytest.approx(0.5)
    assert light_weight(200.0, cfg) == 1.0 and light_weight(None, cfg) == 1.0
    fear = probs(fear=0.9)
    dark = stretch(0, 1, NEUTRAL, crop_mean=120.0) + stretch(1, 3, fear, crop_mean=20.0)
    values, _, _ = replay(dark, cfg)
    assert all(sig["emotion.fear"] is None for ts, sig in values if ts >= 1.0)
    dim = stretch(0, 1, NEUTRAL, crop_mean=120.0) + stretch(1, 2, fear, crop_mean=60.0)
    lit = stretch(0, 1, NEUTRAL, crop_mean=120.0) + stretch(1, 1.5, fear, crop_mean=120.0)
    (_, dim_end), (_, lit_end) = replay(dim, cfg)[0][-1], replay(lit, cfg)[0][-1]
    assert dim_end["emotion.fear"] == pytest.approx(lit_end["emotion.fear"])  # half the weight: half the speed


def test_tired_night_drivers_raise_emotion_alerts_before_and_none_after():
    for seed in range(3):
        frames = night_driver(seed)
        before = {e[0] for e in replay(frames, EmotionConfig.off())[2] if e[1] == "raise"}
        assert before == {"anger", "distress"}  # the synthetic drivers reproduce the issue before the change
        _, _, events = replay(frames, EmotionConfig())
        assert events == [], (seed, events)


def test_emotion_config_is_validated_and_in_the_monitor_config():
    with pytest.raises(ValidationError, match="dim_below 40.0 must exceed dark_below 45.0"):
        EmotionConfig(dim_below=40.0)
    with pytest.raises(ValidationError, match="baseline_min_s 90.0 must not exceed baseline_s 60.0"):
        EmotionConfig(baseline_min_s=90.0)
    with pytest.raises(config.ConfigError, match=r"emotion\.hold_of_s: Extra inputs are not permitted"):
        config.validate({"emotion": {"hold_of_s": 1.0}})
    rules = {r.name: r for r in config.default_rules()}
    assert rules["anger"].signal == "emotion.angry" and rules["distress"].signal == "emotion.distress"
    assert "hold_off_s" in config.dump_defaults()


def test_the_monitor_feeds_the_emotion_signals_and_off_reproduces_the_plain_ones():
    from edgefer.edge.monitor import DISTRESS, Monitor
    from edgefer.edge.sources.demo import DemoSource

    assert DISTRESS == emotion.DISTRESS
    raw = {"privacy": {"block_network": False}, "source": {"type": "demo", "duration_s": 3.0, "fps": 10.0}}
    for emotion_cfg, same in ((EmotionConfig.off().model_dump(), True), ({}, False)):
        cfg = config.validate({**raw, "emotion": emotion_cfg})
        monitor, source = Monitor(cfg), DemoSource(cfg.source)
        source.open()
        results = [monitor.process(frame) for frame in iter(source.read, None)]
        faces = [r for r in results if r.driver is not None]
        assert len(faces) >= 25 and all(r.driver.crop_mean > 45 for r in faces)  # the demo's day face is lit
        for r in faces:
            assert r.signals["emotion.evidence"] is not None
            if same:
                assert r.signals["emotion.angry"] == r.signals["expression.angry"]
                assert r.signals["emotion.distress"] == r.signals["distress"]
        if not same:  # relative: no value in the first 5 s of evidence
            assert all(r.signals["emotion.distress"] is None for r in faces)
