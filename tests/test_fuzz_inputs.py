"""Fuzzed inputs (Hypothesis, the profile in conftest.py): config YAML, frames, image files for ``analyze`` and
model sidecars. Each input is used, or refused with an error that names the file or field, or skipped and
counted; never a traceback. Each ``@example`` is an input that once broke the runtime."""

from __future__ import annotations

import copy
import io
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgefer.edge import config, sources
from edgefer.edge.contract import ContractError, CropSpec, InputSpec, ModelContract, OutputSpec
from edgefer.edge.loop import run
from edgefer.edge.models import Classifier, models_dir
from edgefer.edge.monitor import Monitor, valid_frame
from edgefer.edge.outputs import Dispatcher
from edgefer.edge.samples import sample_image_path
from edgefer.edge.sources import Frame
from edgefer.edge.sources.demo import DemoConfig, DemoSource

# -- config YAML ---------------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)
DEFAULTS = config.MonitorConfig().model_dump(mode="json")


def key_paths(tree, prefix=()):
    """Every key path of the default config, nested ones included (rules.0.threshold ...)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for k, v in items:
        yield (*prefix, k)
        yield from key_paths(v, (*prefix, k))


PATHS = sorted(key_paths(DEFAULTS), key=str)


@st.composite
def mutated_config(draw) -> dict:
    """The default config with 1-3 keys set to any value, deleted, or given an unknown neighbour."""
    raw = copy.deepcopy(DEFAULTS)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = raw
        try:
            for k in path[:-1]:
                parent = parent[k]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
        action = draw(st.sampled_from(["set", "set", "delete", "unknown"]))
        if action == "set":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
    return raw


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def load_or_refuse(path: Path) -> config.MonitorConfig | None:
    """The config, or None after checking the refusal names the file; anything else fails the test."""
    try:
        cfg = config.load(path)
    except config.ConfigError as exc:
        assert str(path) in str(exc)
        return None
    assert not any(isinstance(v, float) and math.isnan(v) for v in _leaves(cfg.model_dump()))
    return cfg


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
@example("source: {type: demo, fps: 2021-02-30}\n")  # ValueError from YAML's date constructor
@example(b"\xff\xfesource: demo\n")  # UnicodeDecodeError, not naming the file
@example("[" * 1000)  # RecursionError inside the YAML parser
@example("rules: [{name: x, signal: no_face_s, threshold: .nan, release: .nan, levels: [1]}]\n")  # never fires
def test_any_file_is_a_config_or_an_error_naming_it(scratch, text):
    path = scratch / "config.yaml"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    load_or_refuse(path)


@given(mutated_config())
@example({**DEFAULTS, "detector": {**DEFAULTS["detector"], "\n": 0}})  # an error message broken over two lines
@example({**DEFAULTS, "rules": [{**DEFAULTS["rules"][0], "threshold": math.nan, "release": math.nan}]})
def test_mutated_defaults_are_a_config_or_an_error_naming_the_field(scratch, raw):
    path = scratch / "mutated.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        cfg = config.load(path)
    except config.ConfigError as exc:
        lines = str(exc).splitlines()
        assert lines and all(line.startswith(f"{path}: ") for line in lines)
        return
    assert not any(isinstance(v, float) and math.isnan(v) for v in _leaves(cfg.model_dump()))
    try:  # what the monitor checks at start (a rule on an unknown signal) is a ConfigError too
        Monitor._check_rules(_RulesOnly(cfg))
    except config.ConfigError as exc:
        assert "rules." in str(exc)


class _RulesOnly:
    """Just what Monitor._check_rules reads, without loading models per example."""

    def __init__(self, cfg: config.MonitorConfig) -> None:
        self.cfg = cfg
        self.expression = type("Expr", (), {"labels": ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                                       "neutral"]})()


# -- frames ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def monitor() -> Monitor:
    return Monitor(config.validate({"privacy": {"block_network": False}}))


def odd_layouts(gray: np.ndarray):
    """Views of the same pixels with unusual memory layouts."""
    return st.sampled_from([gray, gray[::-1], gray[:, ::-1], gray[::-1, ::-1], np.asfortranarray(gray),
                            gray.T.copy().T, np.lib.stride_tricks.as_strided(gray, gray.shape, gray.strides)])


PHOTO = cv2.resize(cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_GRAYSCALE), (160, 188))


@given(st.data())
def test_a_valid_frame_in_any_memory_layout_gives_the_contiguous_result(monitor, data):
    view = data.draw(odd_layouts(PHOTO))
    step = data.draw(st.sampled_from([1, 2]))
    view = view[::step, ::step]
    assert valid_frame(Frame(0, 0.0, view))
    got = [f.to_json() for f in monitor.faces(view)]
    want = [f.to_json() for f in monitor.faces(np.ascontiguousarray(view))]
    assert got == want


BAD_PIXELS = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=2, max_dims=2, min_side=16,
                                                                           max_side=40),
               elements=st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 128.0, 2.0**100])),
    hnp.arrays(st.sampled_from([np.int16, np.uint16, np.int64, np.bool_]), (24, 24)),
    hnp.arrays(np.uint8, st.sampled_from([(0, 0), (15, 40), (40, 15), (1, 1), (24,), (24, 24, 3), (2, 24, 24)])),
    st.sampled_from([None, [[0] * 20] * 20, "frame", b"\0" * 400]),
)


BAD_FRAMES = st.lists(st.tuples(st.integers(0, 40), st.one_of(
    BAD_PIXELS.map(lambda g: ("pixels", g)),
    st.sampled_from([math.nan, math.inf, -math.inf]).map(lambda t: ("clock", t)))), min_size=1, max_size=6)


def with_bad_frames(clean: list[Frame], bad: list) -> list[Frame]:
    """The clean frames with bad ones slipped in (bad pixels, or good pixels on a NaN/inf clock)."""
    out = list(clean)
    for position, (what, value) in sorted(bad, key=lambda b: -b[0]):
        position = min(position, len(clean))
        ts = clean[min(position, len(clean) - 1)].ts
        out.insert(position, Frame(-1, ts, value) if what == "pixels" else Frame(-1, value, clean[0].gray))
    return out


class ListSource(sources.Source):
    type_key = ""
    frames: list[Frame] = []

    def read(self):
        return self.frames.pop(0) if self.frames else None


@pytest.fixture(scope="module")
def drive() -> tuple[list[Frame], list[tuple]]:
    """8 s of the demo at 5 fps around the driver leaving the view (12-20 s), and the events it gives."""
    demo = DemoSource(DemoConfig(width=320, height=180, fps=5, duration_s=20))
    demo.open()
    clean = [f for f in iter(demo.read, None) if f.ts >= 12.0]
    return clean, events_of(clean)[0]


def events_of(frames: list[Frame]) -> tuple[list[tuple], int]:
    from edgefer.edge import plugins

    key = (sources.__name__, sources.Source)
    plugins.discover(*key)
    plugins._CACHE[key]["fuzz-list"] = ListSource
    try:
        ListSource.frames = list(frames)
        cfg = config.validate({"privacy": {"block_network": False}, "faults": {"bad_frame_report_every": 1}})
        cfg.source = sources.SourceConfig(type="fuzz-list")
        summary = run(cfg, dispatcher=Dispatcher([]))
    finally:
        del plugins._CACHE[key]["fuzz-list"]
    alerts = [(e.kind, e.name, e.action, e.level, e.ts) for e in summary.events if e.kind == "alert"]
    skipped = [e for e in summary.events if e.name == "bad_frame"]
    assert len(skipped) == summary.bad_frames  # each one reported (one event per bad frame here)
    return alerts, summary.bad_frames


@settings(max_examples=4)  # each example is a whole monitor run (~1-2 s here)
@given(bad=BAD_FRAMES)
@example(bad=[(20, ("clock", math.nan))])  # a NaN clock was taken as a frame time: no alert after it
@example(bad=[(0, ("pixels", None))])  # bad_frame_report_every: 1 reported no bad frame at all (n % 1 == 1)
def test_bad_frames_are_skipped_and_counted_and_change_no_alert(drive, bad):
    clean, alerts = drive
    assert any(a[1] == "driver_not_visible" for a in alerts)  # the clip does raise something
    got, bad_frames = events_of(with_bad_frames(clean, bad))
    assert bad_frames == len(bad)
    assert got == alerts


def test_a_frame_on_a_nan_clock_is_a_bad_frame():
    gray = np.zeros((32, 32), np.uint8)
    assert not valid_frame(Frame(0, math.nan, gray)) and not valid_frame(Frame(0, math.inf, gray))
    assert valid_frame(Frame(0, np.float32(1.5), gray)) and valid_frame(Frame(0, 3, gray))


# -- image files for analyze -------------------------------------------------------------------------------


def encode(kind: str, face: np.ndarray) -> bytes:
    """One image file of the sample face in an awkward format."""
    from PIL import Image

    rgb = Image.fromarray(face[..., ::-1])
    if kind in ("cmyk.jpg", "la.png", "palette.png", "bw.png", "i16.tif", "la.tif"):
        mode = {"cmyk.jpg": "CMYK", "la.png": "LA", "palette.png": "P", "bw.png": "1", "i16.tif": "I;16",
                "la.tif": "LA"}[kind]
        buf = io.BytesIO()
        rgb.convert(mode).save(buf, {"jpg": "JPEG", "png": "PNG", "tif": "TIFF"}[kind.rsplit(".", 1)[1]])
        return buf.getvalue()
    arrays = {
        "png": face, "jpg": face, "bmp": face, "webp": face,
        "16bit.png": face.astype(np.uint16) * 257, "16bit-low.png": face.astype(np.uint16),
        "float.tif": face.astype(np.float32) / 255, "nan.tif": np.where(face > 250, np.nan, face / 255.0)
        .astype(np.float32), "1x1.png": face[:1, :1], "bgra16.png": np.dstack([face, face[..., :1]])
        .astype(np.uint16) * 257, "grey.png": face[..., 0],
    }
    ok, data = cv2.imencode("." + kind.rsplit(".", 1)[-1], arrays[kind])
    assert ok
    return data.tobytes()


KINDS = ["png", "jpg", "bmp", "webp", "16bit.png", "16bit-low.png", "float.tif", "nan.tif", "1x1.png",
         "bgra16.png", "grey.png", "cmyk.jpg", "la.png", "palette.png", "bw.png", "i16.tif", "la.tif"]
NAMES = ["a.jpg", "a.png", "a.tif", "a.bmp", "a.webp", "a.pgm", "a.JPG"]
FACE = cv2.resize(cv2.imread(str(sample_image_path("grace_hopper"))), (128, 150))


@pytest.fixture(scope="module")
def analyzer():
    from edgefer.edge.cli import analyze_paths

    cfg = config.validate({"privacy": {"block_network": False}})
    return lambda paths: analyze_paths(paths, cfg)


@settings(max_examples=40)
@given(kind=st.sampled_from(KINDS), name=st.sampled_from(NAMES), cut=st.one_of(st.none(), st.floats(0, 1)),
       flip=st.lists(st.integers(0, 10**6), max_size=3))
@example(kind="16bit-low.png", name="a.png", cut=None, flip=[])  # was read as black (16 -> 8 bits by >> 8)
@example(kind="i16.tif", name="a.tif", cut=None, flip=[])
@example(kind="nan.tif", name="a.tif", cut=None, flip=[])  # a NaN pixel made the whole image black
@example(kind="float.tif", name="a.tif", cut=None, flip=[])  # OpenCV cannot decode a colour float TIFF to grey
def test_any_image_file_gives_a_result_or_a_readable_error(scratch, analyzer, kind, name, cut, flip):
    data = bytearray(encode(kind, FACE))
    if cut is not None:  # truncated
        data = data[:int(len(data) * cut)]
    for position in flip:  # corrupted bytes
        if data:
            data[position % len(data)] ^= 0xFF
    folder = scratch / "images"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / name).write_bytes(bytes(data))
    [result] = analyzer([str(folder)])
    assert result["path"] == str(folder / name)
    if "error" in result:
        assert result["error"] == "not a readable image" and result["faces"] == []
    elif cut is None and not flip and kind not in ("1x1.png", "bw.png"):  # intact (1-bit dithering loses the face)
        assert len(result["faces"]) == 1, kind
    # the folder source reads the same file as a frame, or as a bad frame the monitor skips and counts
    source = sources.registry()["folder"](sources.registry()["folder"].config_class(path=str(folder)))
    source.open()
    frame = source.read()
    assert frame.gray.dtype == np.uint8 and frame.gray.ndim == 2
    assert frame.bgr is None or (frame.bgr.shape == (*frame.gray.shape, 3) and frame.bgr.dtype == np.uint8)


# -- model sidecars ------------------------------------------------------------------------------------------


SIDECAR = json.loads((models_dir() / "fer-student.json").read_text())


def sidecar_paths(tree, prefix=()):
    for k, v in (tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []):
        yield (*prefix, k)
        yield from sidecar_paths(v, (*prefix, k))


SIDECAR_PATHS = sorted(sidecar_paths(SIDECAR), key=str)
NEARBY = st.one_of(VALUES, st.sampled_from(["int8", "uint8", "float32", "onnx", "tflite", "eye_state", "yawn",
                                            "NCHW", "rgb", 0, 1, -1, 2, 3, 8, 48, 64, 1e-9, math.inf, 0.5,
                                            ["a", "a"], ["open", "closed"], ["", "x"], [], "0" * 64]))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model")
    shutil.copy(models_dir() / "fer-student.tflite", root / "fer-student.tflite")
    return root


_REFERENCE: list[Classifier] = []


def reference_model() -> Classifier:
    if not _REFERENCE:
        _REFERENCE.append(Classifier("fer-student"))
    return _REFERENCE[0]


def check_mutated_sidecar(model_dir: Path, path: tuple, value, delete: bool) -> None:
    raw = copy.deepcopy(SIDECAR)
    parent = raw
    for k in path[:-1]:
        parent = parent[k]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    sidecar = model_dir / "fer-student.json"
    sidecar.write_text(json.dumps(raw))
    try:
        model = Classifier(model_dir / "fer-student.tflite")
    except ContractError as exc:
        assert str(model_dir) in str(exc)
        return
    crop = np.full((1, 48, 48), 120, np.uint8)
    probs = model.probabilities(crop)
    assert probs.shape == (1, len(model.labels)) and np.isfinite(probs).all()
    reference = reference_model().probabilities(crop)
    if path[0] in ("input", "output", "labels"):  # what the sidecar says about the tensors still holds
        np.testing.assert_allclose(probs, reference, atol=1e-6)


@settings(max_examples=30)
@given(path=st.sampled_from(SIDECAR_PATHS), value=NEARBY, delete=st.booleans())
@example(path=("labels",), value=["angry", "angry", "fear", "happy", "sad", "surprise", "neutral"], delete=False)
@example(path=("output", "dtype"), value="float32", delete=False)  # int8 outputs read as floats: silent garbage
@example(path=("output", "scale"), value=math.inf, delete=False)  # inf probabilities
@example(path=("format",), value="onnx", delete=False)  # a .tflite handed to onnxruntime
@example(path=("output", "kind"), value="probabilities", delete=False)  # logits read as probabilities
@example(path=("task",), value="eye_state", delete=False)  # no 'open' label: the monitor's lookup would fail
def test_a_mutated_sidecar_is_refused_by_name_or_still_right(model_dir, path, value, delete):
    check_mutated_sidecar(model_dir, path, value, delete)


#: every field of the contract's schema (and one label), each mutated in turn
SCHEMA_FIELDS = ([(k,) for k in ModelContract.model_fields] + [("input", k) for k in InputSpec.model_fields]
                 + [("output", k) for k in OutputSpec.model_fields] + [("crop", k) for k in CropSpec.model_fields]
                 + [("labels", 0)])


@pytest.mark.parametrize("path", SCHEMA_FIELDS, ids=lambda p: ".".join(map(str, p)))
@settings(max_examples=5)
@given(value=NEARBY, delete=st.booleans())
def test_every_sidecar_field_mutated_is_refused_by_name_or_still_right(model_dir, path, value, delete):
    check_mutated_sidecar(model_dir, path, value, delete)
