"""Fuzzed outputs (Hypothesis, the profile in conftest.py): the serial line protocol both ways, the JSONL log
rotating under concurrent writers, and the dispatcher under any pattern of output failures. No event is lost:
each arrives once, in order, or is counted as dropped by the documented rule. Each ``@example`` is an input
that once broke an output."""

from __future__ import annotations

import json
import math
import re
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgefer.edge.events import Event
from edgefer.edge.outputs import Dispatcher, Output, OutputConfig
from edgefer.edge.outputs.jsonl import JsonlConfig, JsonlOutput
from edgefer.edge.outputs.serial_line import SerialConfig, SerialOutput, format_line, parse_line

UNSAFE = re.compile(r"[^\x20-\x7e]|[,*$]")
TEXT = st.text(max_size=20)
EVENTS = st.builds(Event, kind=st.sampled_from(["alert", "fault", "status"]), name=TEXT, action=TEXT,
                   level=st.integers(-(2**40), 2**40), ts=st.floats(), value=st.one_of(st.none(), st.floats()),
                   message=TEXT)


def same_float(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or got == want


# -- serial line protocol -----------------------------------------------------------------------------------


@given(EVENTS)
@example(Event("alert", "ünïcode,name*", "$raise\r\n", 1, math.inf, math.nan))
def test_every_event_becomes_one_line_that_parses_back(event):
    line = format_line(event)
    assert line.isascii() and line.endswith("\r\n") and line.count("\n") == 1 and line.startswith("$EDGEFER,1,")
    fields = parse_line(line)
    assert fields["kind"] == event.kind
    assert fields["name"] == UNSAFE.sub("_", event.name) and fields["action"] == UNSAFE.sub("_", event.action)
    assert fields["level"] == event.level
    assert same_float(fields["ts"], float(f"{event.ts:.3f}"))
    if event.value is None or math.isnan(event.value):
        assert fields["value"] is None
    else:
        assert same_float(fields["value"], float(f"{event.value:.3f}"))


def with_checksum(body: str) -> str:
    from edgefer.edge.outputs.serial_line import checksum

    return f"${body}*{checksum(body)}\r\n" if body.isascii() else f"${body}*00\r\n"


@given(st.one_of(st.binary(max_size=80), st.text(max_size=80),
                 st.lists(st.text(max_size=6), min_size=0, max_size=10).map(lambda p: with_checksum(",".join(p))),
                 EVENTS.map(format_line).flatmap(lambda line: st.integers(0, len(line) - 1).map(
                     lambda i: line[:i] + chr((ord(line[i]) + 1) % 128) + line[i + 1:]))))
@example("$EDGEFER,1,alert,x,raise,one,1.000,*4A\r\n")  # int('one') escaped as a bare ValueError
@example("$EDGEFER,1,alert,ü,raise,1,1.000,*00\r\n")  # non-ASCII text: UnicodeEncodeError in the checksum
@example(b"$EDGEFER\xff*00\r\n")  # non-ASCII bytes: UnicodeDecodeError
def test_any_received_line_is_parsed_or_refused_saying_why(line):
    try:
        fields = parse_line(line)
    except ValueError as exc:
        assert type(exc) is ValueError and ("EDGEFER" in str(exc) or "checksum" in str(exc))
        return
    assert set(fields) == {"version", "kind", "name", "action", "level", "ts", "value"}


@settings(max_examples=20)
@given(st.lists(EVENTS, min_size=1, max_size=8))
def test_events_over_a_serial_loop_arrive_whole_and_in_order(events):
    out = SerialOutput(SerialConfig(port="loop://"))
    for event in events:
        out.emit(event)
    received = out.serial.read(out.serial.in_waiting).decode("ascii").splitlines(keepends=True)
    out.close()
    assert [parse_line(line)["level"] for line in received] == [e.level for e in events]
    assert received == [format_line(e) for e in events]


# -- JSONL rotation under concurrent writers ----------------------------------------------------------------


@settings(max_examples=12)
@given(writers=st.integers(2, 4), per_writer=st.integers(1, 120), max_bytes=st.integers(4096, 12000),
       message=st.integers(0, 400))
@example(writers=4, per_writer=120, max_bytes=4096, message=30)  # rotations clobbered each other: 40 % lost
def test_concurrent_writers_rotating_one_log_lose_nothing(tmp_path_factory, writers, per_writer, max_bytes, message):
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    config = JsonlConfig(path=path, max_bytes=max_bytes, keep=100, max_total_bytes=1 << 30, fsync=False)
    errors: list[Exception] = []
    start = threading.Barrier(writers)

    def write(w: int) -> None:
        out = JsonlOutput(config)  # one output each, as two monitor processes would have
        start.wait()
        for i in range(per_writer):
            try:
                out.emit(Event("alert", f"writer{w}", "raise", 1, float(i), message="x" * message))
            except Exception as exc:  # the dispatcher would retry it; here it counts as a failure
                errors.append(exc)
        out.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = sorted(path.parent.iterdir(), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]  # whole lines only
    assert all(f.stat().st_size <= max_bytes for f in files)
    for w in range(writers):  # every event of every writer, once, in its order
        assert [r["ts"] for r in rows if r["name"] == f"writer{w}"] == [float(i) for i in range(per_writer)]


# -- the dispatcher under any failure pattern -----------------------------------------------------------------


class Flaky(Output):
    type_key = ""

    def __init__(self, label: str) -> None:
        super().__init__(OutputConfig(type="flaky"))
        self.label, self.broken, self.events = label, False, []

    def emit(self, event: Event) -> None:
        if self.broken:
            raise OSError(f"{self.label} unplugged")
        self.events.append(event)

    def describe(self) -> str:
        return self.label


OPS = st.lists(st.one_of(
    st.tuples(st.just("emit"), st.sampled_from(["alert", "fault", "status"])),
    st.tuples(st.just("break"), st.integers(0, 2)),
    st.tuples(st.just("fix"), st.integers(0, 2)),
    st.tuples(st.just("wait"), st.floats(0, 40)),
    st.tuples(st.just("retry"), st.none()),
), max_size=60)


@settings(max_examples=60)
@given(ops=OPS, max_pending=st.integers(1, 80))
def test_the_dispatcher_delivers_everything_once_in_order_or_counts_it_dropped(ops, max_pending):
    now = [0.0]
    outputs = [Flaky(f"out{i}") for i in range(3)]
    dispatcher = Dispatcher(outputs, max_pending=max_pending, clock=lambda: now[0])
    emitted: list[Event] = []
    for n, (op, arg) in enumerate(ops):
        if op == "emit":
            emitted.append(Event(arg, f"e{n}", "raise", 1, float(n)))
            dispatcher.emit(emitted[-1])
        elif op == "break":
            outputs[arg].broken = True
        elif op == "fix":
            outputs[arg].broken = False
        elif op == "wait":
            now[0] += arg
        else:
            dispatcher.retry()
        for label, s in dispatcher.stats().items():  # nothing vanishes, at any moment
            assert s["offered"] == s["delivered"] + s["pending"] + s["dropped"], label
    for out in outputs:
        out.broken = False
    dispatcher.close()
    for out, s in zip(outputs, dispatcher.stats().values(), strict=True):
        own = [e for e in out.events if not e.name.startswith("output_")]
        assert s["pending"] == 0 and s["delivered"] == len(out.events)
        assert s["offered"] == len(out.events) + s["dropped"]
        it = iter(emitted)  # what arrived is the emitted sequence, in order, less what was counted as dropped
        assert all(any(e is x for x in it) for e in own)
        if s["dropped"] == 0:
            assert own == emitted
        if sum(e.kind == "alert" for e in emitted) <= max_pending:  # alerts go last: only when more wait than fit
            assert [e for e in emitted if e.kind == "alert"] == [e for e in own if e.kind == "alert"]


@pytest.mark.parametrize("max_pending", [1, 3])
def test_a_full_queue_gives_up_status_then_faults_and_alerts_last(max_pending):
    out = Flaky("out")
    out.broken = True
    dispatcher = Dispatcher([out], max_pending=max_pending)
    kinds = ["alert", "status", "fault", "alert", "status"]
    for i, kind in enumerate(kinds):
        dispatcher.emit(Event(kind, f"e{i}", "raise", 1, float(i)))
    out.broken = False
    dispatcher.close()
    kept = [e.kind for e in out.events]
    assert kept == (["alert"] if max_pending == 1 else ["alert", "fault", "alert"])
