"""The model contract: the JSON sidecar shipped beside every model file.

The toolchain writes it, the runtime trusts nothing else: input size, colour, dtype and quantisation, the
crop geometry the model was trained on, the labels in output order. Loading checks the file's size and
sha256 against it, so a truncated copy on an SD card is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1


class ContractError(ValueError):
    """A model or its sidecar is missing, corrupt, or breaks the contract."""


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    height: int = Field(ge=8, le=1024)
    width: int = Field(ge=8, le=1024)
    channels: Literal[1, 3] = 1
    colour: Literal["grey", "rgb", "bgr"] = "grey"
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    dtype: Literal["int8", "uint8", "float32"]
    scale: float = Field(1.0, gt=0, description="real = (q - zero_point) * scale; real is the raw pixel 0..255")
    zero_point: int = 0


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dtype: Literal["int8", "uint8", "float32"]
    scale: float = Field(1.0, gt=0)
    zero_point: int = 0
    kind: Literal["logits", "probabilities", "degrees"] = Field(
        "logits", description="degrees: a regression (head pose), one angle per label")


class CropSpec(BaseModel):
    """How a face (or eye, mouth) box becomes the model's input square."""

    model_config = ConfigDict(extra="forbid")

    reference: Literal["face_box", "eye", "mouth"] = Field(
        "face_box", description="what the crop is centred on: the face box, an eye keypoint or the mouth keypoint")
    size_iod: float | None = Field(None, gt=0, le=4, description="eye/mouth crops: side in inter-ocular distances "
                                                                 "(tools/measure_eye_crop.py)")
    mirror_left: bool = Field(False, description="eye crops: the left eye is mirrored to look like a right eye")
    margin: float = Field(0.0, ge=-0.4, le=1.0, description="added on each side, as a fraction of the box side")
    square: bool = True
    align: Literal["none", "eyes-level"] = "none"
    interpolation: Literal["area", "linear"] = "area"


class ModelContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    name: str = Field(min_length=1)
    task: Literal["expression", "eye_state", "yawn", "head_pose"]
    file: str = Field(description="model file name, beside the sidecar")
    format: Literal["tflite", "onnx"]
    target: str = "cpu"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(gt=0)
    labels: list[str] = Field(min_length=2)
    input: InputSpec
    output: OutputSpec
    crop: CropSpec = CropSpec()
    threads: int | None = Field(None, ge=1, le=64, description="suggested XNNPACK threads")
    params: int | None = None
    macs: int | None = None
    metrics: dict = Field(default_factory=dict)
    dataset: dict = Field(default_factory=dict)
    teacher: dict | None = None
    recipe: dict = Field(default_factory=dict)
    tools: dict[str, str] = Field(default_factory=dict)
    created: str = ""

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not supported (this runtime reads {SCHEMA_VERSION})")
        return v

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, labels: list[str]) -> list[str]:
        # outputs are looked up by label: a repeated or empty one would shift every probability after it
        if len(set(labels)) != len(labels) or not all(labels):
            raise ValueError(f"labels must be distinct and non-empty, got {labels}")
        return labels

    @model_validator(mode="after")
    def _task_labels(self) -> ModelContract:
        if self.task == "eye_state" and "open" not in self.labels:  # the monitor reads p(open)
            raise ValueError(f"an eye_state model needs an 'open' label, got {self.labels}")
        return self


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read_contract(sidecar: str | Path) -> ModelContract:
    sidecar = Path(sidecar)
    if not sidecar.is_file():
        raise ContractError(f"{sidecar}: sidecar missing; every model needs its .json contract beside it")
    try:
        raw = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{sidecar}: not valid JSON ({exc})") from None
    try:
        return ModelContract.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"{sidecar}: breaks the model contract: {problems}") from None


def load_contract(model_path: str | Path, verify: bool = True) -> ModelContract:
    """Read the sidecar of ``model_path`` and, with ``verify``, check the model file against it."""
    model_path = Path(model_path)
    contract = read_contract(sidecar_path(model_path))
    if not model_path.is_file():
        raise ContractError(f"{model_path}: model file missing (its sidecar names {contract.file})")
    if model_path.suffix != f".{contract.format}":
        raise ContractError(f"{model_path}: the sidecar says format {contract.format!r}, the file is "
                            f"{model_path.suffix or 'without a suffix'}")
    if verify:
        size = model_path.stat().st_size
        if size != contract.bytes:
            raise ContractError(f"{model_path}: {size} bytes, the sidecar says {contract.bytes}: truncated or replaced")
        digest = sha256_of(model_path)
        if digest != contract.sha256:
            raise ContractError(f"{model_path}: sha256 {digest[:12]}... does not match the sidecar's "
                                f"{contract.sha256[:12]}...: corrupt or replaced")
    return contract


def write_contract(contract: ModelContract, sidecar: str | Path) -> None:
    Path(sidecar).write_text(json.dumps(contract.model_dump(mode="json"), indent=2) + "\n")
