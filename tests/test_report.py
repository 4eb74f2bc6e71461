"""The signal log (``type: signals``) and the drive report (``edgefer report``), down to a real headless browser
drawing the page."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from pydantic import ValidationError

from edgefer.compile.report import LEVEL_COLOURS, ReportError, build, layout, read_jsonl, write_report, x_of
from edgefer.edge import config
from edgefer.edge.events import Event
from edgefer.edge.loop import run
from edgefer.edge.outputs import Dispatcher, build_outputs
from edgefer.edge.outputs.jsonl import JsonlConfig, JsonlOutput
from edgefer.edge.outputs.signals import SignalsConfig, SignalsOutput


def sample(ts: float, **over) -> dict:
    closed = 8.0 <= ts < 11.5
    zone = "centre_console" if 30 <= ts < 35 else "road_ahead"
    base = {"ts": ts, "face": True, "eyes_open": 0.05 if closed else 0.9, "yawn": 0.1, "expression": "neutral",
            "zone": zone, "alerts": {"eyes_closed": 2} if 10 <= ts < 13.5 else {},
            "signals": {"perclos": 0.1, "eyes_closed_s": 0.0, "head_yaw": 30.0 if zone != "road_ahead" else 1.0,
                        "head_pitch": -30.0 if zone != "road_ahead" else -2.0, "yawns_per_window": 0.0,
                        "glance_away_s": 0.0}}
    base.update(over)
    return base


def write_drive(folder, seconds: float = 40.0, fps: float = 10.0):
    """An event log and a signal log of a drive, written by the real outputs."""
    events = JsonlOutput(JsonlConfig(path=folder / "events.jsonl", fsync=False))
    for e in [Event("status", "monitor", "start"), Event("alert", "eyes_closed", "raise", 1, 10.0, 1.0),
              Event("alert", "eyes_closed", "escalate", 2, 11.0, 1.0), Event("alert", "eyes_closed", "clear", 0, 13.5),
              Event("alert", "phone_use", "raise", 1, 33.0, 3.0), Event("alert", "phone_use", "clear", 0, 37.0),
              Event("status", "monitor", "stop", 0, seconds)]:
        events.emit(e)
    events.close()
    signals = SignalsOutput(SignalsConfig(path=folder / "signals.jsonl"))
    for i in range(int(seconds * fps)):
        signals.observe(sample(i / fps))
    signals.close()
    return folder / "events.jsonl", folder / "signals.jsonl"


# -- the signal log -------------------------------------------------------------------------------------------


def test_signals_output_writes_one_summary_per_second(tmp_path):
    _, path = write_drive(tmp_path, seconds=20.0)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [line["t"] for line in lines] == [float(s) for s in range(20)]  # the last, partial second on close
    nine = lines[9]
    assert nine["frames"] == 10 and nine["eyes_open"] == pytest.approx(0.05) and nine["zone"] == "road_ahead"
    assert nine["signals"]["perclos"] == pytest.approx(0.1) and nine["expression"] == "neutral"
    assert lines[10]["alerts"] == {"eyes_closed": 2} and lines[0]["alerts"] == {}
    assert "T" in nine["time"]
    with pytest.raises(ValidationError, match="period_s"):
        SignalsConfig(path=tmp_path / "s.jsonl", period_s=0)
    assert config.validate({"outputs": [{"type": "signals", "path": str(tmp_path / "s.jsonl")}]})


def test_signals_output_rotates_and_caps_like_the_event_log(tmp_path):
    out = SignalsOutput(SignalsConfig(path=tmp_path / "signals.jsonl", max_bytes=4096, keep=2,
                                      max_total_bytes=3 * 4096))
    for i in range(3000):  # ~300 s at 10 fps: far more than 3 x 4 KiB of lines
        out.observe(sample(i / 10))
    out.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["signals.jsonl", "signals.jsonl.1", "signals.jsonl.2"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 4096
    last = json.loads((tmp_path / "signals.jsonl").read_text().splitlines()[-1])
    assert last["t"] == 299.0  # the newest lines are kept


def test_a_failing_signal_log_never_stops_the_alerts(tmp_path, caplog):
    class Broken(SignalsOutput):
        def observe(self, s):
            raise OSError("card full")

    recorder = JsonlOutput(JsonlConfig(path=tmp_path / "events.jsonl", fsync=False))
    dispatcher = Dispatcher([Broken(SignalsConfig(path=tmp_path / "s.jsonl")), recorder])
    assert dispatcher.wants_signals
    for i in range(5):
        dispatcher.signals(sample(float(i)))
    dispatcher.emit(Event("alert", "phone_use", "raise", 1, 5.0))
    dispatcher.close()
    assert read_jsonl(tmp_path / "events.jsonl", "event log", ("name",))[0]["name"] == "phone_use"
    assert sum("cannot record signals" in r.message for r in caplog.records) == 1
    assert not Dispatcher([recorder]).wants_signals


def test_the_monitor_feeds_the_signal_log(tmp_path):
    cfg = config.validate({"source": {"type": "demo", "duration_s": 3.0, "fps": 10.0}, "detector": {"type": "haar"},
                           "outputs": [{"type": "signals", "path": str(tmp_path / "signals.jsonl")}]})
    dispatcher = build_outputs(cfg.outputs)
    run(cfg, dispatcher=dispatcher)
    dispatcher.close()
    lines = [json.loads(x) for x in (tmp_path / "signals.jsonl").read_text().splitlines()]
    assert [line["t"] for line in lines] == [0.0, 1.0, 2.0] and all(line["frames"] == 10 for line in lines)
    assert {"no_face_s", "glance_away_s", "perclos", "eye_closure"} <= set(lines[-1]["signals"])
    assert lines[-1]["face"] > 0.5 and lines[-1]["expression"] is not None


# -- the report -----------------------------------------------------------------------------------------------


def test_report_lanes_from_the_logs(tmp_path):
    events, signals = write_drive(tmp_path)
    tl = build(read_jsonl(events, "event log", ("kind",)), read_jsonl(signals, "signal log", ("t",)))
    assert tl.alerts["eyes_closed"] == [(10.0, 11.0, 1), (11.0, 13.5, 2)]
    assert tl.alerts["phone_use"] == [(33.0, 37.0, 1)]
    assert [(s, e, z) for s, e, z in tl.bands["zone"]] == [(0.0, 30.0, "road_ahead"), (30.0, 35.0, "centre_console"),
                                                           (35.0, 40.0, "road_ahead")]
    assert len(tl.series["eyes_open"]) == 40 and tl.series["head_yaw"][31][1] == pytest.approx(30.0)
    assert (tl.t0, tl.t1) == (0.0, 40.0)
    (tmp_path / "bad.jsonl").write_text('{"kind": "alert", "name": "x", "action": "raise", "ts": 1}\nnot json\n')
    with pytest.raises(ReportError, match="bad.jsonl:2: not a JSON line"):
        write_report(tmp_path / "bad.jsonl", tmp_path / "out")
    with pytest.raises(ReportError, match="signals.jsonl:1: a signal log line needs t"):
        write_report(events, tmp_path / "out", signals_path=events.with_name("signals.jsonl").write_text("{}\n")
                     and events.with_name("signals.jsonl"))


def test_report_command_writes_a_png_and_an_offline_page(tmp_path, capsys):
    from edgefer.edge.cli import main

    events, signals = write_drive(tmp_path)
    assert main(["report", str(events), "--signals", str(signals), "--out", str(tmp_path / "out")]) == 0
    assert "3 alert spell(s)" in capsys.readouterr().out  # eyes_closed at two levels, phone_use
    page = (tmp_path / "out" / "report.html").read_text()
    png = (tmp_path / "out" / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in page and "data:image/png;base64," in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # offline
    assert main(["report", str(events), "--out", str(tmp_path / "alerts-only")]) == 0  # signals are optional


def _browser() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_the_page_draws_its_timeline_in_a_real_headless_browser(tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser installed (Debian: apt-get install chromium)")
    events, signals = write_drive(tmp_path)
    write_report(events, tmp_path / "out", signals_path=signals)
    tl = build(read_jsonl(events, "event log", ("kind",)), read_jsonl(signals, "signal log", ("t",)))
    lanes = layout(tl)
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1000,700",
           (tmp_path / "out" / "report.html").as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "the browser wrote no screenshot"
    import cv2

    image = cv2.imread(str(shot))[:, :, ::-1].astype(int)  # RGB

    def colour(hex_colour: str) -> np.ndarray:
        return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])

    # the level-2 eyes_closed bar (11.0-13.5 s) and the phone_use bar (33-37 s) in their rows
    for rule, (start, end), level in (("eyes_closed", (11.0, 13.5), 2), ("phone_use", (33.0, 37.0), 1)):
        top, bottom = lanes[f"alert:{rule}"]
        x0, x1 = int(x_of(tl, start)) + 2, int(x_of(tl, end)) - 2
        patch = image[int(top) + 3:int(bottom) - 3, x0:x1]
        assert np.abs(patch - colour(LEVEL_COLOURS[level])).max() <= 8, f"{rule}: no level-{level} bar drawn"
    # the eye-openness line: blue pixels in its lane, low during the closure (8-11.5 s), high elsewhere
    top, bottom = lanes["eye openness p(open)"]
    lane = image[int(top):int(bottom), int(x_of(tl, 0)):int(x_of(tl, 40))]
    blue = (lane[:, :, 2] - lane[:, :, 0] > 80)
    assert blue.sum() > 300, "the eye-openness line was not drawn"
    rows = np.nonzero(blue[:, int(x_of(tl, 9.5) - x_of(tl, 0))])[0]
    assert rows.size and rows.min() > (bottom - top) * 0.8  # near the bottom: eyes closed
    # the zone band: the console look in orange
    top, bottom = lanes["zone"]
    pixel = image[int((top + bottom) / 2), int(x_of(tl, 32.5))]
    assert np.abs(pixel - colour("#ff7f0e")).max() <= 8
