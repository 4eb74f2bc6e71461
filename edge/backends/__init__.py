"""Inference backends, one module each, found by ``type_key`` (the Frigate detector-plugin pattern).

Adding a backend means adding one file here with a pydantic config (``type: Literal["name"]``) and a
:class:`Backend` subclass with the same ``type_key``. A backend whose library is missing is skipped with a
message saying what to install, never a crash at import.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgefer.edge.contract import ModelContract


class BackendUnavailable(RuntimeError):
    """The library a backend needs is not installed on this machine."""


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str


class Backend:
    """Runs one model. ``infer`` takes a uint8 batch of crops [N, H, W] (grey) and returns float32 [N, classes]."""

    type_key: str = ""
    formats: tuple[str, ...] = ()
    config_class: type[BackendConfig] = BackendConfig

    def __init__(self, model_path: Path, contract: ModelContract, config: BackendConfig) -> None:
        self.model_path = model_path
        self.contract = contract
        self.config = config

    def infer(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.type_key}:{self.model_path.name}"


_REGISTRY: dict[str, type[Backend]] = {}
_UNAVAILABLE: dict[str, str] = {}


def _discover() -> None:
    if _REGISTRY or _UNAVAILABLE:
        return
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except ImportError as exc:  # a backend module must not import its library at top level, but be safe
            _UNAVAILABLE[info.name] = str(exc)
            continue
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Backend) and obj is not Backend and obj.type_key:
                _REGISTRY[obj.type_key] = obj


def registry() -> dict[str, type[Backend]]:
    _discover()
    return dict(_REGISTRY)


def create(type_key: str, model_path: str | Path, contract: ModelContract, **options) -> Backend:
    backends = registry()
    if type_key not in backends:
        raise ValueError(f"unknown backend {type_key!r}; available: {', '.join(sorted(backends))}")
    cls = backends[type_key]
    config = cls.config_class(type=type_key, **options)
    return cls(Path(model_path), contract, config)


def for_model(model_path: str | Path, contract: ModelContract, prefer: str | None = None, **options) -> Backend:
    """The preferred backend, or the first one that handles the model's format and whose library is present."""
    backends = registry()
    order = [prefer] if prefer else []
    order += [k for k, cls in backends.items() if contract.format in cls.formats and k not in order]
    reasons = []
    for key in order:
        try:
            return create(key, model_path, contract, **options)
        except BackendUnavailable as exc:
            reasons.append(f"{key}: {exc}")
    raise BackendUnavailable(f"no backend can run {model_path} ({contract.format}): " + "; ".join(reasons))


def quantize_input(crops: np.ndarray, contract: ModelContract) -> np.ndarray:
    """uint8 pixels [N,H,W] -> the model's input tensor, per the contract's dtype and quantisation."""
    spec = contract.input
    x = crops.astype(np.float32)
    if spec.dtype != "float32":
        info = np.iinfo(np.dtype(spec.dtype))
        x = np.clip(np.round(x / spec.scale + spec.zero_point), info.min, info.max).astype(spec.dtype)
    return x[:, None] if spec.layout == "NCHW" else x[..., None]


def dequantize_output(y: np.ndarray, contract: ModelContract) -> np.ndarray:
    spec = contract.output
    if spec.dtype == "float32":
        return y.astype(np.float32)
    return ((y.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)
