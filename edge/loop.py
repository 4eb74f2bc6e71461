"""The run loop: a source driven frame by frame through the :class:`~edgefer.edge.monitor.Monitor` to the outputs,
kept alive through bad frames, a lost camera (reopened with back-off) and failing outputs."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from edgefer.edge import outputs, sources
from edgefer.edge.config import MonitorConfig
from edgefer.edge.events import Event
from edgefer.edge.monitor import FrameResult, Monitor, valid_frame
from edgefer.edge.sources import SourceLost

log = logging.getLogger("edgefer.monitor")


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    bad_frames: int = 0
    seconds: float = 0.0
    first_frame_s: float | None = None  # from start of run() to the first processed frame
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=10000))  # the latest; the log has all
    source: str = ""
    reconnects: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)


def _open_with_retry(source: sources.Source, cfg: MonitorConfig, emit: Callable[[Event], None],
                     sleep: Callable[[float], None] = time.sleep) -> int:
    """Reopen a lost camera with doubling back-off; returns the number of attempts it took."""
    wait, waited, attempts = cfg.faults.retry_initial_s, 0.0, 0
    while True:
        attempts += 1
        try:
            source.open()
            return attempts
        except (sources.SourceError, SourceLost) as exc:
            give_up = cfg.faults.give_up_after_s
            if give_up is not None and waited >= give_up:
                raise sources.SourceError(f"{source.describe()}: gave up after {waited:.0f} s: {exc}") from None
            log.warning("%s; retrying in %.0f s", exc, wait)
            sleep(wait)
            waited += wait
            wait = min(wait * 2, cfg.faults.retry_max_s)


def run(cfg: MonitorConfig, max_frames: int | None = None, on_frame: Callable[[FrameResult], None] | None = None,
        dispatcher: outputs.Dispatcher | None = None, sleep: Callable[[float], None] = time.sleep,
        started: float | None = None, keep_timings: bool = False) -> RunSummary:
    """Run the monitor until the source ends, ``max_frames`` frames were processed, or Ctrl-C. ``started`` (a
    ``time.perf_counter()`` value, e.g. taken when the process began) is what ``first_frame_s`` counts from.
    ``keep_timings``: keep every frame's stage times (benchmarks); otherwise only the latest 1000."""
    start = time.perf_counter()
    started = start if started is None else started
    if cfg.privacy.block_network:
        from edgefer.edge.privacy import install_network_guard

        install_network_guard()
    source_cls = sources.registry()[cfg.source.type]
    source = source_cls(cfg.source)
    monitor = Monitor(cfg, timing_window=None if keep_timings else 1000)
    own_dispatcher = dispatcher is None
    dispatcher = dispatcher or outputs.build_outputs(cfg.outputs)
    summary = RunSummary(source=source.describe())
    save_dir = Path(cfg.privacy.save_frames) if cfg.privacy.save_frames else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)

    def emit(event: Event) -> None:
        summary.events.append(event)
        dispatcher.emit(event)

    source.open()  # a source that cannot be opened at start is a configuration error: say so, do not spin
    emit(Event("status", "monitor", "start", 0, 0.0, message=f"{source.describe()}; " + "; ".join(monitor.describe())))
    last_ts = 0.0
    try:
        while max_frames is None or summary.frames < max_frames:
            t0 = time.perf_counter()
            try:
                frame = source.read()
            except SourceLost as exc:
                emit(Event("fault", "camera_lost", "lost", 2, last_ts, message=str(exc)))
                source.close()
                attempts = _open_with_retry(source, cfg, emit, sleep)
                summary.reconnects += 1
                emit(Event("fault", "camera_lost", "recovered", 0, last_ts, message=f"after {attempts} attempt(s)"))
                continue
            if frame is None:
                break
            monitor.timings["read"].append((time.perf_counter() - t0) * 1000.0)
            if not valid_frame(frame):
                summary.bad_frames += 1
                if (summary.bad_frames - 1) % cfg.faults.bad_frame_report_every == 0:  # the 1st, then every Nth
                    shape = getattr(frame.gray, "shape", None)
                    emit(Event("fault", "bad_frame", "skipped", 0, frame.ts,
                               message=f"frame {frame.index}: unusable image (shape {shape}); "
                                       f"{summary.bad_frames} so far"))
                continue
            last_ts = frame.ts
            result = monitor.process(frame)
            t = time.perf_counter()
            for event in result.events:
                emit(event)
            dispatcher.retry()
            if dispatcher.wants_signals:
                dispatcher.signals(monitor.sample(result))
            if dispatcher.wants_frames or save_dir is not None:
                image = frame.bgr if frame.bgr is not None else frame.gray
                faces = [(result.driver.detection.box, result.driver.label())] if result.driver else []
                active = {name: st.level for name, st in monitor.rules.items() if st.level}
                if dispatcher.wants_frames:
                    dispatcher.show(image, faces, active)
                if save_dir is not None:  # only when the user asked for frames on disk (privacy)
                    from edgefer.edge.outputs.overlay import draw

                    cv2.imwrite(str(save_dir / f"{frame.index:06d}.jpg"), draw(image, faces, active))
            monitor.timings["output"].append((time.perf_counter() - t) * 1000.0)
            summary.frames += 1
            summary.faces += result.driver is not None
            if summary.first_frame_s is None:
                summary.first_frame_s = time.perf_counter() - started
            if on_frame is not None:
                on_frame(result)
    except KeyboardInterrupt:
        log.info("stopped by the user")
    finally:
        source.close()
        summary.seconds = time.perf_counter() - start
        emit(Event("status", "monitor", "stop", 0, last_ts,
                   message=f"{summary.frames} frames, a face in {summary.faces}, {summary.bad_frames} bad"))
        if own_dispatcher:
            dispatcher.close()
    summary.timings = {stage: list(values) for stage, values in monitor.timings.items()}
    return summary
