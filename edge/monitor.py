"""One frame through the monitor: frame -> driver's face -> models -> smoothed signals -> alert rules -> events.

Each frame goes through named stages (read, detect, crop, infer, pose, state, output) whose times are recorded for
``edgefer bench``. The state update is pure (:mod:`edgefer.edge.temporal`, :mod:`edgefer.edge.alerts`); this
module only wires the detector and models to it. :mod:`edgefer.edge.loop` drives it from a source to the outputs.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgefer.edge import attention, detectors, drowsiness, headpose
from edgefer.edge.alerts import RuleState, step
from edgefer.edge.config import ConfigError, MonitorConfig
from edgefer.edge.contract import ContractError
from edgefer.edge.crop import crop, crop_rotated, eye_line, keypoints_from_box
from edgefer.edge.detectors import Detection
from edgefer.edge.drowsiness import Observation
from edgefer.edge.emotion import EmotionState, ExpressionObservation, holds_rule, signal_names, step_rule
from edgefer.edge.emotion import signals as emotion_signals
from edgefer.edge.emotion import update as emotion_update
from edgefer.edge.events import Event
from edgefer.edge.models import Classifier, models_dir
from edgefer.edge.signing import TrustPolicy
from edgefer.edge.sources import Frame
from edgefer.edge.temporal import DriverState, observe, seconds_without_face
from edgefer.edge.tracking import DriverTrack, rank_faces, roi_for, update

log = logging.getLogger("edgefer.monitor")

#: Expressions whose sum is the ``distress`` signal.
DISTRESS = ("fear", "sad")
STAGES = ("read", "detect", "crop", "infer", "pose", "state", "output")


@dataclass
class FaceResult:
    detection: Detection
    expression: dict[str, float] | None = None
    crop_mean: float | None = None  # mean grey of the expression crop (how well lit the face is)
    eyes_open: float | None = None
    yawn: float | None = None
    head_pose: tuple[float, float, float] | None = None  # (yaw, pitch, roll) degrees, see edgefer.edge.headpose
    zone: str | None = None  # analyze only: the attention zone of head_pose against the nominal road-ahead direction

    def label(self) -> str:
        parts = []
        if self.expression:
            top = max(self.expression, key=self.expression.__getitem__)
            parts.append(f"{top} {self.expression[top]:.2f}")
        if self.eyes_open is not None:
            parts.append(f"eyes {self.eyes_open:.2f}")
        if self.yawn is not None:
            parts.append(f"yawn {self.yawn:.2f}")
        if self.head_pose is not None:
            parts.append("yaw {:.0f} pitch {:.0f}".format(*self.head_pose[:2]))
        return " ".join(parts) or "face"

    def to_json(self) -> dict:
        return {"box": [round(v, 1) for v in self.detection.box], "score": round(self.detection.score, 4),
                "expression": self.expression, "eyes_open": self.eyes_open, "yawn": self.yawn,
                "head_pose": None if self.head_pose is None else
                dict(zip(("yaw", "pitch", "roll"), (round(a, 1) for a in self.head_pose), strict=True)),
                "zone": self.zone}


@dataclass
class FrameResult:
    frame: Frame
    driver: FaceResult | None
    detected: bool  # the detector ran on this frame
    signals: dict[str, float | None]
    events: list[Event] = field(default_factory=list)


def optional_model(name: str | None, threads: int, backend: str | None, what: str,
                   trust: TrustPolicy | None = None) -> Classifier | None:
    """A model the config names; a shipped name that is not shipped (yet) is skipped with a note, an explicit
    path that is missing or broken is an error."""
    if name is None:
        return None
    explicit = Path(name).suffix in (".tflite", ".onnx")
    if not explicit and not (models_dir() / f"{name}.tflite").is_file():
        log.warning("no %s model %r is shipped; its signals stay empty", what, name)
        return None
    return Classifier(name, backend=backend, threads=threads, trust=trust)


def optional_head_pose(name: str | None, threads: int, backend: str | None,
                       trust: TrustPolicy | None = None) -> headpose.Estimator | None:
    """The head-pose estimator the config names; a shipped name that is not shipped is skipped with a note."""
    if name is None:
        return None
    if not name.startswith("facemesh") and Path(name).suffix not in (".tflite", ".onnx") and \
            not (models_dir() / f"{name}.tflite").is_file():
        log.warning("no head-pose model %r is shipped; head pose stays empty", name)
        return None
    return headpose.create(name, backend=backend, threads=threads, trust=trust)


def valid_frame(frame: Frame) -> bool:
    """A frame the loop can use: 8-bit grey, at least 16 px each way, on a finite clock (a NaN time would stop
    every timer)."""
    g = frame.gray
    return (isinstance(g, np.ndarray) and g.dtype == np.uint8 and g.ndim == 2 and min(g.shape) >= 16
            and isinstance(frame.ts, numbers.Real) and math.isfinite(frame.ts))


class Monitor:
    """Per-frame processing; :func:`run` drives it from a source."""

    def __init__(self, cfg: MonitorConfig, timing_window: int | None = 1000) -> None:
        """``timing_window``: per-stage times kept (the latest N); None keeps all (a finite benchmark run). A
        monitor left running for hours in a car must not grow."""
        self.cfg = cfg
        try:
            self.detector = detectors.create(cfg.detector)
        except detectors.Unavailable as exc:  # e.g. the BlazeFace file removed from a trimmed install
            log.warning("face detector %s unavailable (%s); using OpenCV's Haar cascade", cfg.detector.type, exc)
            self.detector = detectors.create({"type": "haar"})
        m = cfg.models
        self.trust = TrustPolicy.from_config(cfg.security.trusted_key, cfg.security.allow_unsigned)
        self.expression = optional_model(m.expression, m.threads, m.backend, "expression", self.trust)
        self.eye_state = optional_model(m.eye_state, m.threads, m.backend, "eye-state", self.trust)
        self.yawn = optional_model(m.yawn, m.threads, m.backend, "yawn", self.trust)
        self.head_pose = optional_head_pose(m.head_pose, m.threads, m.backend, self.trust)
        self._check_rules()
        self.track: DriverTrack | None = None
        self.driver = DriverState()
        self.emotion = EmotionState()
        self.drowsy = drowsiness.DrowsyState()
        self.attention = attention.AttentionState()
        self.rules = {rule.name: RuleState() for rule in cfg.rules}
        self.timings: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=timing_window))
        self.counts: Counter[str] = Counter()

    def _check_rules(self) -> None:
        """A rule watching a signal that does not exist would never fire: refuse it at start, by name."""
        labels = self.expression.labels if self.expression is not None else []
        known = {"no_face_s", "distress", *drowsiness.SIGNALS, *attention.SIGNALS,
                 *(f"expression.{lb}" for lb in labels)}
        for i, rule in enumerate(self.cfg.rules):
            if rule.signal in known or self.expression is not None and rule.signal in signal_names(labels):
                continue
            expression_signal = rule.signal.startswith(("expression.", "emotion.")) or rule.signal == "distress"
            if expression_signal and self.expression is None:
                log.warning("rule %s watches %s but no expression model is loaded: it will not fire",
                            rule.name, rule.signal)
                continue
            raise ConfigError(f"rules.{i}.signal: unknown signal {rule.signal!r} (rule {rule.name!r}); known: "
                              f"{', '.join(sorted(known))}")

    def _timed(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[stage].append((now - start) * 1000.0)
        return now

    def faces(self, gray: np.ndarray) -> list[FaceResult]:
        """Every face in one image with its model outputs, the likely driver first (for ``analyze``)."""
        found = rank_faces(self.detector.detect(gray), gray.shape, self.cfg.tracking)
        results = [self.describe_face(gray, det, rounded=True) for det in found]
        for result in results:  # one image has no drive to calibrate against: the config's nominal direction
            if result.head_pose is not None:
                result.zone = attention.zone_of_pose(result.head_pose, self.cfg.attention)
        return results

    def describe_face(self, gray: np.ndarray, det: Detection, rounded: bool = False) -> FaceResult:
        """Crop the face (and its eyes and mouth) the way each model's sidecar says, and run the models."""
        result = FaceResult(det)
        t = time.perf_counter()
        crop_ms = infer_ms = 0.0
        if self.expression is not None:
            patch = crop(gray, det.int_box, self.expression.contract.crop, self.expression.input_size)
            t1 = time.perf_counter()
            probs = self.expression.probabilities(patch[None])[0]
            t2 = time.perf_counter()
            crop_ms, infer_ms = crop_ms + (t1 - t) * 1e3, infer_ms + (t2 - t1) * 1e3
            t = t2
            result.expression = {k: float(p) for k, p in zip(self.expression.labels, probs, strict=True)}
            result.crop_mean = float(patch.mean())
        if self.eye_state is not None or self.yawn is not None:
            keypoints = det.keypoints or keypoints_from_box(det.box)
            iod, angle = eye_line(keypoints)
            if iod >= 4:
                if self.eye_state is not None:
                    spec = self.eye_state.contract.crop
                    side = (spec.size_iod or 0.55) * iod
                    tilt = angle if spec.align == "eyes-level" else 0.0
                    eyes = np.stack([crop_rotated(gray, keypoints[e], side, tilt, self.eye_state.input_size)
                                     for e in ("right_eye", "left_eye")])
                    if spec.mirror_left:
                        eyes[1] = eyes[1][:, ::-1]
                    t1 = time.perf_counter()
                    p = self.eye_state.probabilities(eyes)
                    t2 = time.perf_counter()
                    crop_ms, infer_ms = crop_ms + (t1 - t) * 1e3, infer_ms + (t2 - t1) * 1e3
                    t = t2
                    result.eyes_open = float(p[:, self.eye_state.labels.index("open")].mean())
                if self.yawn is not None:
                    spec = self.yawn.contract.crop
                    side = (spec.size_iod or 1.4) * iod
                    tilt = angle if spec.align == "eyes-level" else 0.0
                    mouth = crop_rotated(gray, keypoints["mouth"], side, tilt, self.yawn.input_size)
                    t1 = time.perf_counter()
                    p = self.yawn.probabilities(mouth[None])[0]
                    t2 = time.perf_counter()
                    crop_ms, infer_ms = crop_ms + (t1 - t) * 1e3, infer_ms + (t2 - t1) * 1e3
                    positive = [lb for lb in self.yawn.labels if lb in ("yawn", "open", "mouth_open")]
                    result.yawn = float(p[self.yawn.labels.index(positive[0])]) if positive else float(p[-1])
        self.timings["crop"].append(crop_ms)
        self.timings["infer"].append(infer_ms)
        if self.head_pose is not None:
            t = time.perf_counter()
            result.head_pose = self.head_pose.estimate(gray, det)
            self.timings["pose"].append((time.perf_counter() - t) * 1000.0)
        if rounded:
            if result.expression is not None:
                result.expression = {k: round(v, 4) for k, v in result.expression.items()}
            result.eyes_open = None if result.eyes_open is None else round(result.eyes_open, 4)
            result.yawn = None if result.yawn is None else round(result.yawn, 4)
        return result

    def _detect(self, frame: Frame) -> bool:
        """Detection schedule: around the tracked driver every ``detect_every`` frames (cheap: a small, scaled
        window), the whole frame every ``search_every`` frames while nobody is tracked and every ``full_every``
        frames while tracking. Returns whether the detector ran."""
        cfg = self.cfg.tracking
        c = self.counts
        c["since_detect"] += 1
        c["since_full"] += 1
        first = c["detections"] == 0
        if self.track is None:
            due_full, due_roi = first or c["since_detect"] >= cfg.search_every, False
        else:
            due_full = c["since_full"] >= cfg.full_every
            due_roi = not due_full and c["since_detect"] >= cfg.detect_every
        if not (due_full or due_roi):
            return False
        found = self._detect_roi(frame.gray) if due_roi else []
        if not found:  # the tracked face was lost in its window: look at the whole frame at once
            found = self.detector.detect(frame.gray)
            c["since_full"] = 0
            c["full_detections"] += 1
        self.track = update(self.track, found, frame.gray.shape, frame.ts, frame.index, cfg)
        c["detections"] += 1
        c["since_detect"] = 0
        return True

    def _detect_roi(self, gray: np.ndarray) -> list[Detection]:
        assert self.track is not None
        x0, y0, x1, y1 = roi_for(self.track.detection.box, gray.shape, self.cfg.tracking)
        window = gray[y0:y1, x0:x1]
        scale = min(1.0, self.cfg.tracking.roi_face_px / max(self.track.detection.box[2], 1.0))
        if scale < 1.0:
            window = cv2.resize(window, (max(1, int(window.shape[1] * scale)), max(1, int(window.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA)
        out = []
        for det in self.detector.detect(window):
            x, y, w, h = (v / scale for v in det.box)
            kps = None if det.keypoints is None else \
                {k: (px / scale + x0, py / scale + y0) for k, (px, py) in det.keypoints.items()}
            out.append(Detection((x + x0, y + y0, w, h), det.score, kps))
        self.counts["roi_detections"] += 1
        return out

    def process(self, frame: Frame) -> FrameResult:
        t = time.perf_counter()
        detected = self._detect(frame)
        t = self._timed("detect", t)

        face = self.describe_face(frame.gray, self.track.detection) if self.track is not None else None
        t = time.perf_counter()
        self.counts["frames"] += 1
        self.counts["faces"] += face is not None

        probs = None if face is None or face.expression is None else np.array(list(face.expression.values()))
        self.driver = observe(self.driver, probs if face is not None else None, frame.ts, self.cfg.smoothing)
        if face is not None and probs is None:  # no expression model: still record that a face was seen
            self.driver = DriverState(self.driver.probs, frame.ts, self.driver.first_frame)
        sample = frame.gray[::8, ::8]
        obs = Observation(
            eyes_open=None if face is None else face.eyes_open,
            yawn=None if face is None else face.yawn,
            face_box=None if face is None else face.detection.box,
            keypoints=None if face is None else face.detection.keypoints,  # observed only, never the box guess
            frame_height=frame.gray.shape[0], brightness=float(sample.mean()), spread=float(sample.std()),
            head_pose=None if face is None else face.head_pose)
        self.drowsy = drowsiness.update(self.drowsy, obs, frame.ts, self.cfg.drowsiness)
        self.attention = attention.update(self.attention, obs, frame.ts, self.cfg.attention)
        signals = self.signals(frame.ts, face is not None)
        signals.update(drowsiness.signals(self.drowsy, frame.ts, self.cfg.drowsiness))
        signals.update(attention.signals(self.attention, frame.ts, self.cfg.attention))
        events = []
        if self.expression is not None:
            closed = self.drowsy.closed and self.drowsy.openness is not None  # a closure read this frame
            seen = ExpressionObservation(probs, face.yawn, closed, face.crop_mean) if face is not None and \
                probs is not None else ExpressionObservation()
            self.emotion = emotion_update(self.emotion, seen, frame.ts, self.cfg.emotion, self.cfg.smoothing)
            signals.update(emotion_signals(self.emotion, self.expression.labels, self.cfg.emotion))
        for rule in self.cfg.rules:
            if self.emotion.held_s and holds_rule(rule):  # no expression evidence this frame: its timers stop
                self.rules[rule.name], fired = step_rule(self.rules[rule.name], None, frame.ts, rule,
                                                         self.emotion.held_s)
                events += [Event("alert", e.rule, e.kind, e.level, e.timestamp, e.value) for e in fired]
                continue
            self.rules[rule.name], fired = step(self.rules[rule.name], signals.get(rule.signal), frame.ts, rule)
            events += [Event("alert", e.rule, e.kind, e.level, e.timestamp, e.value) for e in fired]
        self._timed("state", t)
        return FrameResult(frame, face, detected, signals, events)

    def signals(self, ts: float, face_seen: bool) -> dict[str, float | None]:
        """The values alert rules watch. None means "no reading now" (no face): rule timers keep running."""
        out: dict[str, float | None] = {"no_face_s": seconds_without_face(self.driver, ts)}
        if self.expression is not None:
            labels = self.expression.labels
            smoothed = self.driver.probs if face_seen else None
            for i, label in enumerate(labels):
                out[f"expression.{label}"] = None if smoothed is None else float(smoothed[i])
            parts = [labels.index(k) for k in DISTRESS if k in labels]
            out["distress"] = None if smoothed is None or not parts else float(sum(smoothed[i] for i in parts))
        return out

    def sample(self, result: FrameResult) -> dict:
        """One frame's readings for a signal log (``type: signals``): raw model outputs, the expression's top
        label (smoothed), the attention zone, every rule signal and the active alerts' levels."""
        face = result.driver
        expression = None
        if face is not None and self.expression is not None and self.driver.probs is not None:
            expression = self.expression.labels[int(np.argmax(self.driver.probs))]
        return {"ts": result.frame.ts, "face": face is not None,
                "eyes_open": None if face is None else face.eyes_open, "yawn": None if face is None else face.yawn,
                "expression": expression, "zone": self.attention.zone, "signals": result.signals,
                "alerts": {name: st.level for name, st in self.rules.items() if st.level}}

    def describe(self) -> list[str]:
        lines = [f"detector: {self.detector.type_key} every {self.cfg.tracking.detect_every} frame(s)"]
        for what, model in (("expression", self.expression), ("eye state", self.eye_state), ("yawn", self.yawn)):
            lines.append(f"{what}: {model.backend.describe() if model else 'off'}")
        lines.append(self.head_pose.describe() if self.head_pose is not None else "head pose: off")
        if self.trust.enforced:  # a checkout without a key says nothing: its start line stays as it was
            lines.append(self.trust.describe())
        return lines


__all__ = ["ContractError", "FaceResult", "FrameResult", "Monitor", "STAGES", "valid_frame"]
