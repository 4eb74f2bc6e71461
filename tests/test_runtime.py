"""The monitor loop end to end on real parts: the demo source, OpenCV's Haar detector, the shipped int8 model
through ai-edge-litert, the alert rules and the outputs; plus sources, config and tracking on their own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.edge import config, sources
from edgefer.edge.detectors import Detection
from edgefer.edge.loop import run
from edgefer.edge.monitor import Monitor
from edgefer.edge.outputs import Dispatcher
from edgefer.edge.samples import sample_image_path
from edgefer.edge.sources.demo import DemoConfig, DemoSource, truth_at
from edgefer.edge.tracking import TrackingConfig, rank_faces, roi_for, update


def quiet(**overrides) -> config.MonitorConfig:
    raw = {"privacy": {"block_network": False}, "outputs": [{"type": "console"}]}
    raw.update(overrides)
    return config.validate(raw)


def write_face_video(path: Path, frames: int = 24, blank_from: int | None = None) -> Path:
    """An MJPG video of the sample face drifting across a dark frame (blank after ``blank_from``)."""
    face = cv2.imread(str(sample_image_path("grace_hopper")))
    face = cv2.resize(face, (200, 234))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 320))
    assert writer.isOpened()
    for i in range(frames):
        canvas = np.full((320, 480, 3), 40, np.uint8)
        if blank_from is None or i < blank_from:
            x = 100 + 4 * i
            canvas[40:274, x:x + 200] = face
        writer.write(canvas)
    writer.release()
    return path


# --- config ---------------------------------------------------------------------------------------------------

def test_config_errors_name_the_field_and_the_allowed_values(tmp_path):
    with pytest.raises(config.ConfigError, match="source: .*'webcam'.*'capture', 'demo', 'folder', 'picamera'"):
        config.validate({"source": {"type": "webcam"}})
    with pytest.raises(config.ConfigError, match=r"detector\.haar\.min_sise: Extra inputs are not permitted"):
        config.validate({"detector": {"type": "haar", "min_sise": 3}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracking:\n  detect_every: 0\n")
    with pytest.raises(config.ConfigError, match=rf"{bad}: tracking\.detect_every: .*greater than or equal to 1"):
        config.load(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(config.ConfigError, match="top level must be a mapping"):
        config.load(bad)
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "missing.yaml")


def test_default_config_round_trips_through_yaml(tmp_path):
    path = tmp_path / "edgefer.yaml"
    path.write_text(config.dump_defaults())
    assert config.load(path) == config.load()


def test_source_argument_forms(tmp_path):
    assert config.source_from_arg("demo") == {"type": "demo"}
    assert config.source_from_arg("0") == {"type": "capture", "device": "0"}
    assert config.source_from_arg("picamera") == {"type": "picamera", "camera": 0}
    assert config.source_from_arg(str(tmp_path)) == {"type": "folder", "path": str(tmp_path)}
    assert config.source_from_arg("clip.mp4")["type"] == "capture"
    pipeline = "nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink"
    assert config.source_from_arg(pipeline) == {"type": "capture", "device": pipeline}


# --- sources --------------------------------------------------------------------------------------------------

def test_demo_is_deterministic_and_follows_its_script():
    a, b = DemoSource(DemoConfig(duration_s=1.0)), DemoSource(DemoConfig(duration_s=1.0))
    a.open()
    b.open()
    fa, fb = a.read(), b.read()
    assert fa.gray.shape == (360, 640) and fa.gray.dtype == np.uint8
    assert np.array_equal(fa.gray, fb.gray)
    frames = [fa] + [f for f in iter(a.read, None)]
    assert len(frames) == 15 and frames[-1].ts == pytest.approx(14 / 15)
    assert truth_at(9.0).eyes == "closed" and truth_at(16.0).face == "hidden" and truth_at(25.0).light == "night"


def test_capture_source_reads_a_video_file_with_its_clock(tmp_path):
    video = write_face_video(tmp_path / "clip.avi", frames=12)
    src = sources.registry()["capture"](config.validate({"source": {"type": "capture", "device": str(video)}}).source)
    src.open()
    frames = list(iter(src.read, None))
    src.close()
    assert len(frames) == 12
    assert frames[1].ts == pytest.approx(0.1, abs=1e-3) and frames[0].bgr is not None


def test_missing_sources_are_clear_errors(tmp_path):
    for raw in ({"type": "capture", "device": str(tmp_path / "nope.mp4")}, {"type": "folder", "path": str(tmp_path)}):
        src = sources.registry()[raw["type"]](config.validate({"source": raw}).source)
        with pytest.raises(sources.SourceError, match=str(tmp_path)):
            src.open()


# --- tracking -------------------------------------------------------------------------------------------------

def test_driver_is_large_and_central_and_keeps_the_role():
    cfg = TrackingConfig()
    shape = (360, 640)
    driver = Detection((250, 100, 140, 140), 0.9)
    passenger = Detection((500, 120, 120, 120), 0.9)
    small_centre = Detection((300, 150, 40, 40), 0.9)
    assert rank_faces([passenger, small_centre, driver], shape, cfg)[0] is driver
    track = update(None, [driver, passenger], shape, 0.0, 0, cfg)
    assert track.detection is driver
    # the passenger leans in, a little larger but not clearly better: the driver keeps the role
    leaning = Detection((330, 110, 150, 150), 0.9)
    moved = Detection((255, 102, 140, 140), 0.9)
    track = update(track, [leaning, moved], shape, 0.1, 1, cfg)
    assert track.detection is moved and track.since == 0.0
    assert update(track, [], shape, 0.2, 2, cfg) is None
    assert roi_for((600, 300, 100, 100), shape, cfg) == (540, 240, 640, 360)


# --- the loop -------------------------------------------------------------------------------------------------

def test_demo_turns_its_own_photo_as_a_mesh_and_any_other_photo_as_a_plane(tmp_path):
    """The looks turn the default photo as a textured 3-D mesh (its FaceMesh landmarks ship beside the demo): the
    nose moves against the outer eye corners, towards the image's left for yaw > 0 (AFLW2000 signs) and down for
    pitch < 0. Another photo has no landmarks: its looks fall back to the plane turn, and still render."""
    from edgefer.edge.headpose import load_template, rotation_matrix
    from edgefer.edge.sources.demo import LANDMARKS_FILE, MeshTurn

    raw = json.loads(LANDMARKS_FILE.read_text())
    points = np.asarray(raw["points"], np.float64)
    assert points.shape == (468, 2) and raw["photo"] == "grace_hopper"
    assert (points >= 0).all() and (points < raw["photo_size"]).all()
    mesh = MeshTurn(points, load_template(), (raw["photo_size"][1], raw["photo_size"][0]))
    nose, eyes = 1, [33, 263]  # FaceMesh: nose tip, the two outer eye corners

    def nose_offset(yaw: float, pitch: float) -> np.ndarray:
        rel = np.column_stack([mesh.source - mesh.pivot[:2], mesh.depth - mesh.pivot[2]])
        turned = rel @ rotation_matrix(yaw, pitch, 0.0).T
        return turned[nose, :2] - turned[eyes, :2].mean(axis=0)

    straight = nose_offset(0, 0)
    assert nose_offset(30, 0)[0] < straight[0] - 10 and nose_offset(-30, 0)[0] > straight[0] + 10
    assert nose_offset(0, -30)[1] > straight[1] + 5  # looking down: the nose tip drops towards the mouth

    demo = DemoSource(DemoConfig(fps=5.0))
    demo.open()
    assert demo.mesh is not None
    other = tmp_path / "face.png"
    cv2.imwrite(str(other), cv2.imread(str(sample_image_path("grace_hopper"))))
    plane = DemoSource(DemoConfig(photo=str(other), fps=5.0))
    plane.open()
    assert plane.mesh is None
    console = 41.0  # mid-look
    turned_mesh, turned_plane = demo._render(console), plane._render(console)
    assert turned_mesh.shape == turned_plane.shape == (360, 640)
    assert not np.array_equal(turned_mesh, turned_plane)


def test_demo_run_raises_driver_not_visible_in_the_hidden_stretch():
    cfg = quiet(source={"type": "demo", "duration_s": 22.0, "fps": 10.0})
    seen = []
    summary = run(cfg, on_frame=seen.append, dispatcher=Dispatcher([]))
    assert summary.frames == 220
    visible = [r for r in seen if truth_at(r.frame.ts).face == "visible" and truth_at(r.frame.ts).light == "day"]
    found = sum(r.driver is not None for r in visible) / len(visible)
    assert found > 0.9, f"the demo face was found in only {found:.0%} of the frames where it is visible"
    hidden = [r for r in seen if truth_at(r.frame.ts).face == "hidden"]
    assert all(r.driver is None for r in hidden[3:])
    raised = [e for e in summary.events if e.kind == "alert" and e.name == "driver_not_visible" and e.action == "raise"]
    assert len(raised) == 1
    # hidden from 15.0 s; the last face was seen at most one detection interval before: raise 3 s later
    assert 17.5 <= raised[0].ts <= 18.1
    cleared = [e for e in summary.events if e.name == "driver_not_visible" and e.action == "clear"]
    assert cleared and 20.0 <= cleared[0].ts <= 22.0
    eyes = [e for e in summary.events if e.name == "eyes_closed"]  # painted lids from 8.0 to 11.5 s
    assert [(e.action, e.level) for e in eyes] == [("raise", 1), ("escalate", 2), ("clear", 0)]
    assert 10.0 <= eyes[0].ts <= 10.1 + 1e-9 and 11.0 <= eyes[1].ts <= 11.1 + 1e-9 and 13.5 <= eyes[2].ts <= 13.7
    assert summary.events[0].action == "start" and summary.events[-1].action == "stop"
    assert set(summary.timings) >= {"read", "detect", "infer", "state", "output"}


class FlakySource(sources.Source):
    """A camera that delivers an empty frame, fails (unplugged cable), fails to reopen once, then works again but
    also hands over a None, a colour and a float frame."""

    type_key = "flaky-test"
    finite = False

    def __init__(self, config) -> None:
        super().__init__(config)
        self.opens, self.n = 0, 0

    def open(self) -> None:
        self.opens += 1
        if 1 < self.opens < 3:
            raise sources.SourceLost("flaky camera: still unplugged")

    def read(self):
        self.n += 1
        if self.n == 3:
            raise sources.SourceLost("flaky camera: read failed")
        bad = {2: np.zeros((0, 0), np.uint8), 5: None, 6: np.zeros((120, 160, 3), np.uint8),
               7: np.zeros((120, 160), np.float32)}
        if self.n in bad:
            return sources.Frame(self.n, self.n * 0.1, bad[self.n])
        return sources.Frame(self.n, self.n * 0.1, np.full((120, 160), 90, np.uint8))


def test_lost_camera_is_retried_with_backoff_and_bad_frames_are_counted(monkeypatch):
    from edgefer.edge import plugins

    key = ("edgefer.edge.sources", sources.Source)
    plugins.discover(*key)
    monkeypatch.setitem(plugins._CACHE[key], "flaky-test", FlakySource)
    cfg = quiet(faults={"bad_frame_report_every": 2})
    cfg.source = sources.SourceConfig(type="flaky-test")
    waits: list[float] = []
    summary = run(cfg, max_frames=5, dispatcher=Dispatcher([]), sleep=waits.append)
    assert summary.frames == 5 and summary.bad_frames == 4 and summary.reconnects == 1
    assert waits == [1.0]  # one failed reopen, then the doubling wait was not needed
    names = [(e.name, e.action) for e in summary.events if e.kind == "fault"]
    assert names == [("bad_frame", "skipped"), ("camera_lost", "lost"), ("camera_lost", "recovered"),
                     ("bad_frame", "skipped")]  # one event per 2 bad frames, not a flood


def test_analyze_json_contract_driver_first():
    proc = subprocess.run([sys.executable, "-m", "edgefer", "analyze", "grace_hopper", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[0])
    assert result["path"].endswith("grace_hopper.jpg")
    face = result["faces"][0]
    assert set(face) == {"box", "score", "expression", "eyes_open", "yawn", "head_pose", "zone"}
    assert len(face["box"]) == 4 and abs(sum(face["expression"].values()) - 1) < 0.01
    assert set(face["head_pose"]) == {"yaw", "pitch", "roll"} and face["zone"] == "road_ahead"  # a frontal photo


def test_analyze_a_folder_finds_faces_and_reports_unreadable_files(tmp_path):
    face = cv2.imread(str(sample_image_path("grace_hopper")))
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "face.png"), face)
    cv2.imwrite(str(tmp_path / "empty.png"), np.full((200, 200), 128, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    from edgefer.edge.cli import analyze_paths

    results = {Path(r["path"]).name: r for r in analyze_paths([str(tmp_path)], quiet())}
    assert len(results["face.png"]["faces"]) == 1
    assert results["empty.png"]["faces"] == []
    assert results["broken.jpg"]["error"] == "not a readable image"


def test_bench_prints_the_contract_fields():
    proc = subprocess.run([sys.executable, "-m", "edgefer", "bench", "--source", "demo", "--max-frames", "30",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"frames", "seconds", "fps", "faces", "rss_mb", "stages", "board"} <= set(result)
    assert result["frames"] == 30 and result["faces"] > 20
    assert {"p50", "p95", "p99"} <= set(result["stages"]["detect"])


def test_run_with_a_missing_video_exits_2_with_the_path(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgefer", "run", "--source", str(tmp_path / "gone.mp4")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "gone.mp4: video file not found" in proc.stderr


def test_monitor_faces_on_a_video_frame(tmp_path):
    video = write_face_video(tmp_path / "clip.avi", frames=2)
    cap = cv2.VideoCapture(str(video))
    ok, image = cap.read()
    faces = Monitor(quiet()).faces(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert len(faces) == 1 and faces[0].expression is not None


def test_a_long_run_keeps_bounded_state():
    """Hours in a car: stage timings keep a window, not every frame."""
    cfg = quiet(source={"type": "demo", "duration_s": 4.0, "fps": 10.0})
    src = DemoSource(cfg.source)
    src.open()
    monitor = Monitor(cfg, timing_window=5)
    for frame in iter(src.read, None):
        monitor.process(frame)
    assert monitor.counts["frames"] == 40
    assert all(len(v) <= 5 for v in monitor.timings.values())


def test_a_rule_on_an_unknown_signal_is_refused_at_start():
    rules = [{"name": "typo", "signal": "eye_closur", "threshold": 1.0, "release": 0.5, "levels": [2.0]}]
    with pytest.raises(config.ConfigError, match=r"rules\.0\.signal: unknown signal 'eye_closur'.*eye_closure"):
        Monitor(quiet(rules=rules))


def test_int8_features_read_x86_flags_and_arm_features(tmp_path):
    from edgefer.edge.bench import int8_features

    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n\nprocessor\t: 1\nflags\t: avx2\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 asimddp\n")
    assert int8_features(x86) == "avx2 avx512f avx512_vnni"
    assert int8_features(arm) == "asimd asimddp"
    assert int8_features(tmp_path / "missing") == ""
