"""The local outputs and the dispatcher that isolates them: no output failure loses an alert or stops another."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys

import numpy as np
import pytest
import serial
from pydantic import ValidationError

import edgefer.edge.outputs as outputs
from edgefer.edge.events import Event
from edgefer.edge.outputs import Dispatcher, Output, OutputConfig, build_outputs, fault_subject
from edgefer.edge.outputs.console import ConsoleConfig, ConsoleOutput
from edgefer.edge.outputs.jsonl import JsonlConfig, JsonlOutput
from edgefer.edge.outputs.serial_line import SerialConfig, SerialOutput, format_line, parse_line
from edgefer.edge.plugins import Unavailable


def alert(name: str, action: str, level: int, ts: float = 0.0) -> Event:
    return Event("alert", name, action, level=level, ts=ts, value=0.5)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder(Output):
    type_key = ""  # not discovered: the tests hand it to the Dispatcher

    def __init__(self, label: str = "recorder") -> None:
        super().__init__(OutputConfig(type="recorder"))
        self.label = label
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def describe(self) -> str:
        return self.label


class Flaky(Recorder):
    """Fails while ``broken``: an unplugged cable, a full card."""

    def __init__(self, label: str = "flaky") -> None:
        super().__init__(label)
        self.broken = False

    def emit(self, event: Event) -> None:
        if self.broken:
            raise OSError("cable unplugged")
        super().emit(event)


def names(events: list[Event]) -> list[str]:
    return [f"{e.name}:{e.action}" for e in events]


# -- console ----------------------------------------------------------------------------------------------


def test_console_prints_one_line_per_event_and_filters_kinds(capsys):
    out = ConsoleOutput(ConsoleConfig(kinds=["alert", "fault"]))
    out.emit(alert("anger", "raise", 1, ts=3.0))
    out.emit(Event("status", "monitor", "start"))
    out.emit(Event("fault", "camera_lost", "lost", level=2, message="no frames for 2 s"))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["ALERT anger raise level=1 t=3.00s value=0.50",
                     "FAULT camera_lost lost level=2 t=0.00s no frames for 2 s"]
    with pytest.raises(ValidationError):
        ConsoleConfig(kinds=["alarm"])
    with pytest.raises(ValidationError):
        ConsoleConfig(kind=["alert"])  # a typo names its field


# -- jsonl ------------------------------------------------------------------------------------------------


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_appends_fsynced_lines_that_round_trip(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "deep" / "dir" / "events.jsonl"  # parents are created
    out = JsonlOutput(JsonlConfig(path=path))
    events = [alert("anger", "raise", 1, 1.0), alert("anger", "escalate", 2, 4.0), alert("anger", "clear", 0, 9.0)]
    for event in events:
        out.emit(event)
    out.close()
    assert len(synced) == 3
    rows = read_log(path)
    assert [Event(**{k: v for k, v in r.items() if k != "time"}) for r in rows] == events
    assert all("T" in r["time"] and r["time"][-6] in "+-" for r in rows)  # local ISO time with its offset
    JsonlOutput(JsonlConfig(path=path)).emit(Event("status", "monitor", "stop"))  # append, never truncate
    assert [r["action"] for r in read_log(path)] == ["raise", "escalate", "clear", "stop"]
    out.emit(Event("alert", "x", "raise", level=1, value=float("nan")))  # NaN is not JSON: written as null
    assert read_log(path)[-1]["value"] is None


def test_jsonl_config_is_validated(tmp_path):
    with pytest.raises(ValidationError, match="path"):
        JsonlConfig()
    with pytest.raises(ValidationError, match="max_bytes"):
        JsonlConfig(path=tmp_path / "e", max_bytes=10)
    with pytest.raises(ValidationError, match="at least max_bytes"):
        JsonlConfig(path=tmp_path / "e", max_bytes=8192, max_total_bytes=4096)


def test_jsonl_rotates_keeps_and_caps(tmp_path):
    path = tmp_path / "events.jsonl"
    out = JsonlOutput(JsonlConfig(path=path, max_bytes=4096, keep=3, max_total_bytes=1 << 30, fsync=False))
    for i in range(200):  # ~150 bytes each: ~7 files' worth
        out.emit(Event("status", "tick", "n", level=0, ts=float(i)))
    files = [path, *(path.with_name(f"events.jsonl.{n}") for n in (1, 2, 3))]
    assert all(f.exists() for f in files) and not path.with_name("events.jsonl.4").exists()
    assert all(f.stat().st_size <= 4096 for f in files)
    ticks = [r["ts"] for f in reversed(files) for r in read_log(f)]  # .3 oldest ... current newest
    assert ticks == [float(i) for i in range(200 - len(ticks), 200)]  # whole lines, in order, newest kept

    capped = tmp_path / "capped" / "events.jsonl"
    out = JsonlOutput(JsonlConfig(path=capped, max_bytes=4096, keep=5, max_total_bytes=3 * 4096, fsync=False))
    for i in range(200):
        out.emit(Event("status", "tick", "n", ts=float(i)))
    total = sum(f.stat().st_size for f in capped.parent.iterdir())
    assert total <= 3 * 4096
    assert sorted(f.name for f in capped.parent.iterdir()) == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]


def test_jsonl_disk_full_keeps_every_alert_in_order(tmp_path, monkeypatch, caplog):
    path = tmp_path / "events.jsonl"
    log_out, other, clock = JsonlOutput(JsonlConfig(path=path)), Recorder(), Clock()
    dispatcher = Dispatcher([log_out, other], clock=clock)
    full = {"on": False}
    real_write_all = JsonlOutput._write_all

    def write_all(fd: int, data: bytes) -> None:
        if full["on"]:  # a torn write: half the line reaches the card, then ENOSPC
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(JsonlOutput, "_write_all", staticmethod(write_all))
    dispatcher.emit(alert("anger", "raise", 1, 1.0))
    full["on"] = True
    with caplog.at_level(logging.WARNING, logger="edgefer.outputs"):
        dispatcher.emit(alert("anger", "escalate", 2, 2.0))
        dispatcher.emit(Event("status", "monitor", "heartbeat", ts=2.5))
        dispatcher.emit(alert("no_face", "raise", 1, 3.0))
        clock.now = 5.0
        assert dispatcher.retry() == 0
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # logged once per spell
    assert "disk full" in caplog.records[0].message and "jsonl" in caplog.records[0].message
    assert [r["action"] for r in read_log(path)] == ["raise"]  # no torn line left behind
    stats = dispatcher.stats()[log_out.describe()]
    assert stats["pending"] == 3 and stats["failing"] and "disk full" in stats["error"]
    faults = [e for e in other.events if e.kind == "fault"]
    assert names(faults) == [f"output_failed:{log_out.describe()}"]  # once, to the other output

    full["on"] = False  # space again
    clock.now = 100.0  # past the back-off
    assert dispatcher.retry() == 3 + 1  # the three missed events, and the recovery notice to the other output
    assert [(r["name"], r["action"], r["ts"]) for r in read_log(path)] == [
        ("anger", "raise", 1.0), ("anger", "escalate", 2.0), ("monitor", "heartbeat", 2.5), ("no_face", "raise", 3.0)]
    assert names(other.events)[-1] == f"output_recovered:{log_out.describe()}"
    assert dispatcher.stats()[log_out.describe()] | {"error": ""} == {
        "offered": 4, "delivered": 4, "failed": 4, "pending": 0, "dropped": 0, "failing": False, "spells": 1,
        "error": ""}


def test_jsonl_directory_removed_or_blocked_then_back(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    out = JsonlOutput(JsonlConfig(path=path, fsync=False))
    out.emit(alert("anger", "raise", 1))
    shutil.rmtree(path.parent)  # someone removed the directory under an open file: noticed, recreated
    out.emit(alert("anger", "clear", 0))
    assert [r["action"] for r in read_log(path)] == ["clear"]
    shutil.rmtree(path.parent)
    path.parent.write_text("not a directory")  # cannot be recreated: a clear error, kept for retry
    with pytest.raises(OSError, match=f"event log {path}"):
        out.emit(alert("eyes_closed", "raise", 1))
    path.parent.unlink()
    out.emit(alert("eyes_closed", "raise", 1))
    assert [r["name"] for r in read_log(path)] == ["eyes_closed"]


# -- serial -----------------------------------------------------------------------------------------------


def read_lines(port: serial.SerialBase) -> list[str]:
    return [line.decode("ascii") for line in port.read(port.in_waiting).splitlines(keepends=True)]


def test_serial_line_protocol_over_loop():
    out = SerialOutput(SerialConfig(port="loop://", baudrate=9600))
    event = Event("alert", "anger", "raise", level=1, ts=12.5, value=0.91)
    out.emit(event)
    (line,) = read_lines(out.serial)
    assert line == "$EDGEFER,1,alert,anger,raise,1,12.500,0.910*3D\r\n"
    assert parse_line(line) == {"version": 1, "kind": "alert", "name": "anger", "action": "raise", "level": 1,
                                "ts": 12.5, "value": 0.91}
    with pytest.raises(ValueError, match="checksum"):
        parse_line(line.replace("anger", "angry"))
    odd = format_line(Event("fault", "camera,lost*$", "lost\r\n", level=2))  # separators never leak into fields
    assert parse_line(odd)["name"] == "camera_lost__" and odd.count(",") == 7
    out.close()


def test_serial_config_is_validated():
    with pytest.raises(ValidationError, match="standard rate"):
        SerialConfig(port="loop://", baudrate=12345)
    with pytest.raises(ValidationError, match="timeout"):
        SerialConfig(port="loop://", timeout=0)
    with pytest.raises(ValidationError, match="port"):
        SerialConfig(port="")


def test_serial_missing_port_is_a_clear_error_not_a_crash(caplog):
    with caplog.at_level(logging.WARNING, logger="edgefer.outputs"):
        out = SerialOutput(SerialConfig(port="/dev/ttyNOPE"))  # created: the adapter may be plugged in later
    assert "/dev/ttyNOPE" in caplog.text
    with pytest.raises(OSError, match=r"serial port /dev/ttyNOPE \(unplugged\?\): .*could not open port"):
        out.emit(alert("anger", "raise", 1))


def test_serial_unplugged_then_back_loses_no_alert(monkeypatch):
    out, other, clock = SerialOutput(SerialConfig(port="loop://")), Recorder(), Clock()
    dispatcher = Dispatcher([out, other], clock=clock)
    dispatcher.emit(alert("anger", "raise", 1, 1.0))
    assert [parse_line(x)["action"] for x in read_lines(out.serial)] == ["raise"]

    def unplugged(*args, **kwargs):
        raise serial.SerialException("[Errno 5] Input/output error")

    monkeypatch.setattr(out.serial, "write", unplugged)  # the cable comes out mid-drive
    real_open = serial.serial_for_url
    monkeypatch.setattr(serial, "serial_for_url", lambda *a, **k: unplugged())  # and stays out for a while
    dispatcher.emit(alert("anger", "escalate", 2, 2.0))
    assert out.serial is None  # closed, to be reopened
    dispatcher.emit(alert("anger", "clear", 0, 3.0))
    clock.now = 1.5
    dispatcher.retry()
    assert dispatcher.stats()["serial:loop://"]["pending"] == 2
    assert names([e for e in other.events if e.kind == "fault"]) == ["output_failed:serial:loop://"]

    monkeypatch.setattr(serial, "serial_for_url", real_open)  # plugged back in
    clock.now = 10.0
    dispatcher.retry()
    assert [parse_line(x)["action"] for x in read_lines(out.serial)] == ["escalate", "clear"]
    assert names(other.events)[-1] == "output_recovered:serial:loop://"
    dispatcher.close()


# -- gpio -------------------------------------------------------------------------------------------------


def test_gpio_buzzer_and_led_follow_alerts_and_faults():
    pytest.importorskip("gpiozero")
    from edgefer.edge.outputs.gpio import GpioConfig, GpioOutput

    out = GpioOutput(GpioConfig(pin_factory="mock"))
    buzzer, led = out.buzzer.pin, out.led.pin
    assert (buzzer.info.name, led.info.name) == ("GPIO17", "GPIO27") and not buzzer.state and not led.state
    cfg = out.config

    out.emit(alert("anger", "raise", 1))
    assert led.state and out.led_mode == "on"
    assert out.buzzing == cfg.beeps[1] and out.buzzer._blink_thread is not None  # short beeps

    out.emit(alert("anger", "escalate", 2))
    assert out.buzzing == cfg.beeps[2] and out.buzzing.count == 0  # faster, until cleared
    out.emit(alert("anger", "escalate", 3))
    assert out.buzzing == cfg.beeps[3] and buzzer.state  # continuous tone
    out.emit(alert("anger", "escalate", 5))
    assert out.buzzing == cfg.beeps[3]  # above the highest pattern: the highest

    out.emit(alert("no_face", "raise", 1))  # a second rule
    out.emit(alert("anger", "clear", 0))
    assert led.state  # no_face still active
    assert out.buzzing is None and not buzzer.state  # a counted pattern does not restart on a clear
    out.emit(alert("no_face", "clear", 0))
    assert not led.state and out.led_mode == "off" and not buzzer.state

    out.emit(Event("fault", "output_failed", "serial:/dev/ttyUSB0", level=2))
    assert out.led_mode == "blink" and out.led._blink_thread is not None
    out.emit(Event("fault", "camera_lost", "lost", level=2))
    out.emit(Event("fault", "output_recovered", "serial:/dev/ttyUSB0", level=0))
    assert out.led_mode == "blink"  # the camera is still lost
    out.emit(alert("anger", "raise", 2))
    assert out.led_mode == "on" and led.state  # an alert wins over a fault
    out.emit(alert("anger", "clear", 0))
    out.emit(Event("fault", "camera_recovered", "recovered", level=0))
    assert out.led_mode == "off" and not led.state
    out.close()


def test_gpio_buzz_levels_and_validation():
    pytest.importorskip("gpiozero")
    from edgefer.edge.outputs.gpio import GpioConfig, GpioOutput

    out = GpioOutput(GpioConfig(pin_factory="mock", buzz_levels=[2], led_pin=None))
    out.emit(alert("anger", "raise", 1))
    assert out.buzzing is None and not out.buzzer.pin.state
    out.emit(alert("anger", "escalate", 2))
    assert out.buzzing == out.config.beeps[2]
    out.close()
    with pytest.raises(ValidationError, match="both 5"):
        GpioConfig(buzzer_pin=5, led_pin=5)
    with pytest.raises(ValidationError, match="buzzer_pin"):
        GpioConfig(buzzer_pin=40)
    with pytest.raises(ValidationError, match="1..9"):
        GpioConfig(buzz_levels=[0])


def test_gpio_without_gpiozero_is_unavailable_with_a_hint(monkeypatch):
    from edgefer.edge.outputs.gpio import GpioConfig, GpioOutput

    monkeypatch.setitem(sys.modules, "gpiozero", None)
    with pytest.raises(Unavailable, match="gpiozero is not installed.*apt install python3-gpiozero"):
        GpioOutput(GpioConfig(pin_factory="mock"))


# -- overlay ----------------------------------------------------------------------------------------------


def test_overlay_draw_is_pure_and_keeps_the_shape():
    from edgefer.edge.detectors import Detection
    from edgefer.edge.outputs.overlay import draw

    frame = np.full((240, 320, 3), 30, np.uint8)
    before = frame.copy()
    faces = [Detection((40, 50, 80, 90), 0.9), ((150, 40, 60, 60), "happy 0.80")]
    image = draw(frame, faces, {"anger": 2, "no_face": 1}, faults=["camera"])
    assert image.shape == frame.shape and image.dtype == np.uint8
    assert np.array_equal(frame, before) and not np.array_equal(image, frame)
    assert tuple(image[50, 60]) == (0, 0, 255)  # the box's top edge, red at level 2
    assert draw(frame[..., 0]).shape == frame.shape  # a grey frame comes back in colour


def test_overlay_without_display_or_gui_is_unavailable(monkeypatch):
    import cv2

    from edgefer.edge.outputs.overlay import OverlayConfig, OverlayOutput

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(Unavailable, match="no display"):
            OverlayOutput(OverlayConfig())
    if "GUI:                           NONE" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV has a GUI")
    monkeypatch.setenv("DISPLAY", ":0")
    with pytest.raises(Unavailable, match="no GUI.*opencv-python"):
        OverlayOutput(OverlayConfig())


# -- dispatcher -------------------------------------------------------------------------------------------


def test_dispatcher_isolates_a_failing_output(caplog):
    flaky, a, b, clock = Flaky(), Recorder("a"), Recorder("b"), Clock()
    dispatcher = Dispatcher([flaky, a, b], clock=clock)
    dispatcher.emit(alert("anger", "raise", 1, 1.0))
    flaky.broken = True
    with caplog.at_level(logging.WARNING, logger="edgefer.outputs"):
        for i in range(5):
            dispatcher.emit(alert("anger", "escalate", 2 + i, 2.0 + i))
    assert len(caplog.records) == 1 and "flaky failed: cable unplugged" in caplog.text
    for other in (a, b):  # the others got every event, and one fault notice after the event that failed
        assert names(other.events) == ["anger:raise", "anger:escalate", "output_failed:flaky"] + ["anger:escalate"] * 4
        fault = other.events[2]
        assert fault.kind == "fault" and fault.level == 2 and fault.ts == 2.0 and "cable unplugged" in fault.message
        assert fault_subject(fault) == "output:flaky"

    # back-off: 1 s after the first failure, doubling with each failed attempt, at most max_backoff_s
    emitted_attempts = dispatcher.stats()["flaky"]["failed"]
    clock.now = 0.5
    dispatcher.retry()
    assert dispatcher.stats()["flaky"]["failed"] == emitted_attempts  # too early: not tried
    clock.now = 1000.0
    for _ in range(10):
        dispatcher.retry()
        clock.now += 1000.0
    assert dispatcher._slots[0].backoff_s == 30.0

    flaky.broken = False
    dispatcher.emit(alert("anger", "clear", 0, 9.0))  # the next event delivers what was missed first
    assert [e.level for e in flaky.events] == [1, 2, 3, 4, 5, 6, 0]
    assert names(a.events)[-2:] == ["anger:clear", "output_recovered:flaky"]
    assert [e.name for e in flaky.events].count("output_failed") == 0  # an output is not told its own fault
    stats = dispatcher.stats()
    assert stats["flaky"]["pending"] == 0 and not stats["flaky"]["failing"] and stats["flaky"]["delivered"] == 7
    assert stats["a"]["delivered"] == 9 and stats["a"]["failed"] == 0


def test_dispatcher_pending_queue_drops_status_first_and_alerts_last():
    flaky, clock = Flaky(), Clock()
    flaky.broken = True
    dispatcher = Dispatcher([flaky, Recorder()], max_pending=3, clock=clock)
    seq = [Event("status", "s1", "x"), alert("a1", "raise", 1), Event("status", "s2", "x"), alert("a2", "raise", 1),
           Event("fault", "f1", "x", level=1), Event("status", "s3", "x"), alert("a3", "raise", 1),
           alert("a4", "raise", 1)]
    for event in seq:
        dispatcher.emit(event)
    assert [e.name for e in dispatcher._slots[0].pending] == ["a2", "a3", "a4"]
    assert dispatcher.stats()["flaky"]["dropped"] == 5


def test_dispatcher_close_never_raises(caplog):
    class BadClose(Recorder):
        def close(self) -> None:
            raise RuntimeError("stuck")

    flaky, closing = Flaky(), BadClose()
    flaky.broken = True
    dispatcher = Dispatcher([flaky, closing])
    dispatcher.emit(alert("anger", "raise", 1))
    with caplog.at_level(logging.WARNING, logger="edgefer.outputs"):
        dispatcher.close()
    assert "could not be delivered" in caplog.text and "stuck" in caplog.text


def test_dispatcher_show_passes_frames_and_isolates_errors(caplog):
    class Screen(Recorder):
        def show(self, frame, faces, alerts) -> None:
            raise RuntimeError("window closed")

    dispatcher = Dispatcher([Recorder(), Screen("screen")])
    assert dispatcher.wants_frames and not Dispatcher([Recorder()]).wants_frames
    with caplog.at_level(logging.WARNING, logger="edgefer.outputs"):
        dispatcher.show(np.zeros((4, 4, 3), np.uint8), [])
        dispatcher.show(np.zeros((4, 4, 3), np.uint8), [])
    assert caplog.text.count("window closed") == 1


def test_build_outputs_skips_what_cannot_run_and_falls_back_to_console(monkeypatch, tmp_path, caplog):
    class Broken(Output):
        type_key = "broken"

        def __init__(self, config: OutputConfig) -> None:
            raise OSError("cannot open /dev/thing")

    class BrokenConfig(OutputConfig):
        type: str = "broken"

    Broken.config_class = BrokenConfig
    monkeypatch.setattr(outputs, "registry", lambda: {**outputs.discover(outputs.__name__, Output), "broken": Broken})
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    with caplog.at_level(logging.WARNING, logger="edgefer.outputs"):
        dispatcher = build_outputs([{"type": "broken"}, {"type": "jsonl", "path": str(tmp_path / "e.jsonl")}])
    assert [type(o).__name__ for o in dispatcher.outputs] == ["JsonlOutput"]
    assert dispatcher.stats()["broken"] == {"unavailable": "OSError: cannot open /dev/thing"}
    assert "output broken is not available" in caplog.text

    if sys.platform.startswith("linux"):
        dispatcher = build_outputs([{"type": "overlay"}, {"type": "broken"}])
        assert [type(o).__name__ for o in dispatcher.outputs] == ["ConsoleOutput"]
        assert "no display" in dispatcher.stats()["overlay"]["unavailable"]
    with pytest.raises(ValueError, match="unknown output 'nope'"):
        build_outputs([{"type": "nope"}])
    with pytest.raises(ValidationError, match="baudrate"):
        build_outputs([{"type": "serial", "port": "loop://", "baudrate": 1}])


def test_every_output_is_discovered_with_a_strict_config():
    found = outputs.registry()
    assert {"console", "jsonl", "gpio", "serial", "overlay"} <= set(found)
    for cls in found.values():
        with pytest.raises(ValidationError):
            cls.config_class(type=cls.type_key, no_such_field=1)
