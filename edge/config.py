"""The monitor's one configuration model, read from YAML and validated at start.

Every plugin kind (source, face detector, outputs) is a union of the configs its plugin modules declare,
told apart by ``type``; unknown keys are rejected everywhere, and an error names the field and what it allows.
``edgefer config --print`` writes the defaults with every field's description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge import detectors, outputs, sources
from edge.alerts import RuleConfig
from edge.drowsiness import DrowsinessConfig
from edge.drowsiness import default_rules as drowsiness_rules
from edge.emotion import EmotionConfig
from edge.plugins import config_union
from edge.temporal import SmoothingConfig
from edge.tracking import TrackingConfig


def _union(package: str, base: type) -> Any:
    classes = config_union(package, base)
    if not classes:  # no plugin of this kind importable: the error will come from create()
        return dict
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007 (a runtime-built union)


SourceConfig = _union(sources.__name__, sources.Source)
DetectorConfig = _union(detectors.__name__, detectors.FaceDetector)
OutputConfig = _union(outputs.__name__, outputs.Output)


class ConfigError(ValueError):
    """The configuration file is missing, not YAML, or breaks the schema."""


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str | None = Field("fer-student", description="shipped model name or .tflite/.onnx path; null: off")
    eye_state: str | None = Field("eye-state", description="eye-state model (skipped with a note if not shipped)")
    yawn: str | None = Field("yawn", description="yawn model (skipped with a note if not shipped)")
    backend: str | None = Field(None, description="inference backend (litert, onnxruntime, ...); null: the first "
                                                  "that runs the model")
    threads: int = Field(1, ge=1, le=16, description="inference threads per model")


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    block_network: bool = Field(True, description="refuse every network connection from this process (audit hook)")
    save_frames: str | None = Field(None, description="folder to write annotated frames to; null: never write frames")


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry_initial_s: float = Field(1.0, gt=0, le=60, description="first wait before reopening a lost camera")
    retry_max_s: float = Field(30.0, gt=0, le=3600, description="longest wait between reopen attempts")
    give_up_after_s: float | None = Field(None, gt=0, description="stop after the camera is lost this long; "
                                                                   "null: keep trying")
    bad_frame_report_every: int = Field(100, ge=1, le=100000, description="a fault event per this many bad frames")


def default_rules() -> list[RuleConfig]:
    """Defaults referenced in the README; each can be replaced in the YAML file's ``rules`` list."""
    return drowsiness_rules() + [
        RuleConfig(name="driver_not_visible", signal="no_face_s", threshold=3.0, release=0.5, levels=[0.0, 7.0],
                   clear_after_s=1.0),
        RuleConfig(name="anger", signal="emotion.angry", threshold=0.5, release=0.35, levels=[3.0, 10.0],
                   clear_after_s=3.0, cooldown_s=30.0),
        RuleConfig(name="distress", signal="emotion.distress", threshold=0.55, release=0.4, levels=[4.0, 12.0],
                   clear_after_s=3.0, cooldown_s=30.0),
    ]


def default_outputs() -> list:
    return [{"type": "console"}]


class MonitorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    source: SourceConfig = Field(default_factory=lambda: {"type": "demo"}, description="where frames come from")
    detector: DetectorConfig = Field(default_factory=lambda: {"type": "blazeface"}, description="face detector")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig,
                                     description="detection schedule and which face is the driver")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="the models run on the driver's face")
    smoothing: SmoothingConfig = Field(default_factory=SmoothingConfig, description="expression smoothing")
    emotion: EmotionConfig = Field(default_factory=EmotionConfig,
                                   description="emotion evidence: paused on yawns and closed eyes, weighed by light, "
                                               "relative to the driver's baseline (edge/emotion.py)")
    drowsiness: DrowsinessConfig = Field(default_factory=DrowsinessConfig,
                                         description="eye, yawn, head and light signals (edge/drowsiness.py)")
    rules: list[RuleConfig] = Field(default_factory=default_rules, description="alert rules (see edge/alerts.py)")
    outputs: list[OutputConfig] = Field(default_factory=default_outputs, min_length=1,
                                        description="where events go; all local")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="nothing leaves the car")
    faults: FaultConfig = Field(default_factory=FaultConfig, description="lost cameras and bad frames")


def _describe_errors(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{where}: {field}: {err['msg']}")
    return "\n".join(lines)


def validate(raw: dict, where: str = "config") -> MonitorConfig:
    try:
        return MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, where)) from None


def load(path: str | Path | None = None, overrides: dict | None = None) -> MonitorConfig:
    """The config from a YAML file (or the defaults), with ``overrides`` (top-level keys) applied on top."""
    raw: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings, got {type(loaded).__name__}")
        raw = loaded or {}
    raw.update(overrides or {})
    return validate(raw, where)


def source_from_arg(arg: str) -> dict:
    """``--source`` -> a source config: demo, picamera, a camera index, an image folder or file, a GStreamer
    pipeline (it contains '!'), or a video file."""
    from edge.sources.folder import IMAGE_SUFFIXES

    if arg == "demo":
        return {"type": "demo"}
    if arg == "picamera" or arg.startswith("picamera:"):
        return {"type": "picamera", "camera": int(arg.split(":", 1)[1]) if ":" in arg else 0}
    if arg.isdigit() or "!" in arg:
        return {"type": "capture", "device": arg}
    path = Path(arg)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return {"type": "folder", "path": arg}
    return {"type": "capture", "device": arg}


def _bounds(info) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "len >=")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return f" [{', '.join(parts)}]" if parts else ""


def field_docs(model: type[BaseModel], indent: str = "# ") -> list[str]:
    """One comment line per field: name, description and bounds."""
    lines = []
    for name, info in model.model_fields.items():
        if name == "type":
            continue
        lines.append(f"{indent}{name}: {info.description or ''}{_bounds(info)}".rstrip())
    return lines


def dump_defaults() -> str:
    """The default config as YAML, each section preceded by comments describing its fields and their bounds."""
    data = MonitorConfig().model_dump(mode="json")
    kinds = {"source": (sources.__name__, sources.Source), "detector": (detectors.__name__, detectors.FaceDetector),
             "outputs": (outputs.__name__, outputs.Output)}
    nested = {"tracking": TrackingConfig, "models": ModelsConfig, "smoothing": SmoothingConfig,
              "drowsiness": DrowsinessConfig, "emotion": EmotionConfig, "privacy": PrivacyConfig,
              "faults": FaultConfig, "rules": RuleConfig}
    out = ["# edgefer monitor config: every key is optional; unknown keys are an error.",
           "# Check a file with: edgefer config --check FILE", ""]
    for key, value in data.items():
        out.append(f"# --- {key}: {MonitorConfig.model_fields[key].description or ''}".rstrip())
        if key in kinds:
            for cls in config_union(*kinds[key]):
                kind = cls.model_fields["type"].default
                out.append(f"# type: {kind}")
                out += field_docs(cls, "#   ")
        elif key in nested:
            out += field_docs(nested[key])
        out.append(yaml.safe_dump({key: value}, sort_keys=False).rstrip())
        out.append("")
    return "\n".join(out)
