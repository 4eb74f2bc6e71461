"""Local-only outputs (console, event log, signal log, GPIO, serial, overlay), one module each, by ``type_key``.

An output's ``emit`` may raise: :class:`Dispatcher` isolates every output from the others, keeps the events a
failed output missed and hands them over again once it works, so an alert is never lost because one output
(an unplugged serial cable, a full SD card) failed.

Fault events follow one convention, so outputs can tell when a fault is over (the GPIO LED blinks while any is
active): ``level >= 1`` starts or repeats a fault, ``level == 0`` ends it, and :func:`fault_subject` names what
it is about (``camera_lost`` and ``camera_recovered`` are both about ``camera``; ``output_failed`` and
``output_recovered`` carry the output's label in ``action``).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edgefer.edge.events import Event
from edgefer.edge.plugins import PluginConfig, Unavailable, discover

__all__ = ["Dispatcher", "Output", "OutputConfig", "Unavailable", "build_outputs", "create", "fault_subject",
           "registry", "validate"]

log = logging.getLogger("edgefer.outputs")


class OutputConfig(PluginConfig):
    pass


class Output:
    type_key: str = ""
    config_class: type[OutputConfig] = OutputConfig

    def __init__(self, config: OutputConfig) -> None:
        self.config = config

    def emit(self, event: Event) -> None:
        """Deliver one event; raise on failure (the dispatcher retries it later)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.type_key


def registry() -> dict[str, type[Output]]:
    return discover(__name__, Output)


def validate(config: OutputConfig | dict[str, Any]) -> OutputConfig:
    """A plain dict checked against its output's config class; an unknown type or bad field raises ValueError."""
    if isinstance(config, OutputConfig):
        return config
    kind = config.get("type")
    if kind not in registry():
        raise ValueError(f"unknown output {kind!r}; available: {', '.join(sorted(registry()))}")
    return registry()[kind].config_class(**config)


def create(config: OutputConfig | dict[str, Any]) -> Output:
    """An output from its config; raises :class:`Unavailable` (or the library's error) if it cannot run here."""
    config = validate(config)
    return registry()[config.type](config)


_FAULT_SUFFIX = re.compile(r"_(failed|failure|lost|error|full|recovered|restored|ok)$")


def fault_subject(event: Event) -> str:
    """What a fault event is about, the same for its start and its end (see the module docstring)."""
    subject = _FAULT_SUFFIX.sub("", event.name)
    return f"{subject}:{event.action}" if subject == "output" else subject


#: Which events a full pending queue gives up first: status, then faults, alerts last.
_DROP_ORDER = {"status": 0, "fault": 1, "alert": 2}


@dataclass
class _Slot:
    output: Output
    label: str
    pending: deque[Event] = field(default_factory=deque)
    offered: int = 0  # events handed to this output: offered == delivered + pending + dropped, always
    delivered: int = 0
    failed: int = 0  # failed attempts
    dropped: int = 0
    spells: int = 0  # failure spells so far
    failing: bool = False
    backoff_s: float = 0.0
    next_retry: float = 0.0
    error: str = ""


class Dispatcher:
    """Delivers every event to every output; one output failing never stops the others.

    An output that raises keeps its events in a bounded queue (a full queue drops its oldest status events,
    then faults, alerts last) and gets them again, in order, before its next event, and on :meth:`retry`
    (rate-limited: ``backoff_s`` doubling to ``max_backoff_s``). Each failure spell is logged once, and the
    other outputs get one ``output_failed`` fault event, then ``output_recovered`` once it works again.
    """

    def __init__(self, outputs: Iterable[Output], *, max_pending: int = 1000, backoff_s: float = 1.0,
                 max_backoff_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 unavailable: dict[str, str] | None = None) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        #: label -> why that configured output could not be created (see :func:`build_outputs`)
        self.unavailable = dict(unavailable or {})
        self._slots: list[_Slot] = []
        for output in outputs:
            label = output.describe() or output.type_key or type(output).__name__
            taken = {s.label for s in self._slots}
            if label in taken:
                label = next(f"{label}#{n}" for n in range(2, len(taken) + 3) if f"{label}#{n}" not in taken)
            self._slots.append(_Slot(output, label))
        self._notices: list[tuple[Event, _Slot]] = []
        self._last_ts = 0.0
        self._show_failed: set[str] = set()
        self._observe_failed: set[str] = set()

    @property
    def outputs(self) -> list[Output]:
        return [s.output for s in self._slots]

    @property
    def wants_frames(self) -> bool:
        """True when some output draws frames (the overlay): the monitor can skip drawing otherwise."""
        return any(callable(getattr(s.output, "show", None)) for s in self._slots)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every output (after what each still owes); never raises."""
        if math.isfinite(event.ts):
            self._last_ts = event.ts
        self._deliver(event, exclude=None)
        self._broadcast_notices()

    def retry(self) -> int:
        """Hand failed outputs their pending events again, where their back-off allows; call it each frame.
        Returns how many events were delivered."""
        now = self.clock()
        before = sum(s.delivered for s in self._slots)
        for slot in self._slots:
            if slot.pending and now >= slot.next_retry:
                self._flush(slot)
        self._broadcast_notices()
        return sum(s.delivered for s in self._slots) - before

    @property
    def wants_signals(self) -> bool:
        """True when some output records per-frame signals (``signals``): the monitor builds samples only then."""
        return any(callable(getattr(s.output, "observe", None)) for s in self._slots)

    def signals(self, sample: dict[str, Any]) -> None:
        """Pass one frame's signal sample to outputs that record them (``observe``); an error there is logged once
        per failure spell and never raised: a review log must not hold up the alerts."""
        for slot in self._slots:
            observe = getattr(slot.output, "observe", None)
            if not callable(observe):
                continue
            try:
                observe(sample)
                self._observe_failed.discard(slot.label)
            except Exception as exc:
                if slot.label not in self._observe_failed:
                    self._observe_failed.add(slot.label)
                    log.warning("output %s cannot record signals: %s", slot.label, exc)

    def show(self, frame: Any, faces: Any, alerts: Any = None) -> None:
        """Pass a frame to outputs that draw (``show``); an error there is logged once and never raised."""
        for slot in self._slots:
            show = getattr(slot.output, "show", None)
            if not callable(show):
                continue
            try:
                show(frame, faces, alerts)
            except Exception as exc:  # an overlay must never stop the monitoring
                if slot.label not in self._show_failed:
                    self._show_failed.add(slot.label)
                    log.warning("output %s cannot show frames: %s", slot.label, exc)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per output: offered (events handed to it), delivered, failed (attempts), pending, dropped, failing,
        spells, last error; and the outputs that could not be created, as ``{"unavailable": reason}``."""
        out: dict[str, dict[str, Any]] = {
            s.label: {"offered": s.offered, "delivered": s.delivered, "failed": s.failed, "pending": len(s.pending),
                      "dropped": s.dropped, "failing": s.failing, "spells": s.spells, "error": s.error}
            for s in self._slots
        }
        for label, reason in self.unavailable.items():
            out.setdefault(label, {"unavailable": reason})
        return out

    def close(self) -> None:
        """One last try for pending events, then close every output; never raises."""
        for slot in self._slots:
            self._flush(slot)  # isolates the output: never raises
            if slot.pending:
                log.error("output %s: %d event(s) could not be delivered before closing (%s)",
                          slot.label, len(slot.pending), slot.error)
            try:
                slot.output.close()
            except Exception as exc:
                log.warning("output %s: error while closing: %s", slot.label, exc)
        self._notices.clear()

    # -- internals -------------------------------------------------------------------------------------

    def _deliver(self, event: Event, exclude: _Slot | None) -> None:
        for slot in self._slots:
            if slot is not exclude:
                self._enqueue(slot, event)
                self._flush(slot)

    def _enqueue(self, slot: _Slot, event: Event) -> None:
        slot.offered += 1
        if len(slot.pending) >= self.max_pending:
            rank = _DROP_ORDER.get(event.kind, 0)
            victim = min(range(len(slot.pending)), key=lambda i: (_DROP_ORDER.get(slot.pending[i].kind, 0), i))
            slot.dropped += 1
            if slot.dropped == 1:
                log.warning("output %s: %d events wait for it; dropping the oldest (status first, alerts last)",
                            slot.label, len(slot.pending))
            if _DROP_ORDER.get(slot.pending[victim].kind, 0) > rank:  # the new event matters least: drop it
                return
            del slot.pending[victim]
        slot.pending.append(event)

    def _flush(self, slot: _Slot) -> None:
        while slot.pending:
            try:
                slot.output.emit(slot.pending[0])
            except Exception as exc:  # any error: isolate this output, keep its event
                self._failed(slot, exc)
                return
            slot.pending.popleft()
            slot.delivered += 1
        if slot.failing:
            self._recovered(slot)

    def _failed(self, slot: _Slot, exc: Exception) -> None:
        slot.failed += 1
        slot.error = f"{type(exc).__name__}: {exc}"
        slot.backoff_s = self.backoff_s if not slot.failing else min(slot.backoff_s * 2, self.max_backoff_s)
        slot.next_retry = self.clock() + slot.backoff_s
        if slot.failing:
            log.debug("output %s still failing: %s", slot.label, slot.error)
            return
        slot.failing = True
        slot.spells += 1
        log.warning("output %s failed: %s; keeping its events and retrying (other outputs carry on)",
                    slot.label, exc)
        self._notices.append((Event("fault", "output_failed", slot.label, level=2, ts=self._last_ts,
                                    message=f"output {slot.label} failed: {exc}"), slot))

    def _recovered(self, slot: _Slot) -> None:
        slot.failing = False
        slot.backoff_s = 0.0
        slot.next_retry = 0.0
        log.warning("output %s works again; its missed events were delivered in order", slot.label)
        self._notices.append((Event("fault", "output_recovered", slot.label, level=0, ts=self._last_ts,
                                    message=f"output {slot.label} works again"), slot))

    def _broadcast_notices(self) -> None:
        # Fault notices go out after the event that caused them, to every output but their subject; a notice
        # can cause another (a second output failing), each output at most once per spell, so this ends.
        while self._notices:
            notice, source = self._notices.pop(0)
            self._deliver(notice, exclude=source)


def build_outputs(configs: Iterable[OutputConfig | dict[str, Any]], **dispatcher_options: Any) -> Dispatcher:
    """A :class:`Dispatcher` over every output that can be created. One that cannot (its library missing, no
    display, a directory it may not create) is logged with the reason, skipped and listed in ``stats()``; when
    none can be created, events go to the console so an alert is never silent. An invalid config raises."""
    outputs: list[Output] = []
    unavailable: dict[str, str] = {}
    for config in [validate(c) for c in configs]:  # a config error stops here, before anything is opened
        try:
            outputs.append(create(config))
        except Exception as exc:
            label = config.type
            n = 1
            while label in unavailable:
                n += 1
                label = f"{config.type}#{n}"
            unavailable[label] = str(exc) if isinstance(exc, Unavailable) else f"{type(exc).__name__}: {exc}"
            log.warning("output %s is not available, continuing without it: %s", label, unavailable[label])
    if not outputs:
        from edgefer.edge.outputs.console import ConsoleConfig, ConsoleOutput

        log.warning("no configured output could be started; events go to the console")
        outputs.append(ConsoleOutput(ConsoleConfig()))
    return Dispatcher(outputs, unavailable=unavailable, **dispatcher_options)
