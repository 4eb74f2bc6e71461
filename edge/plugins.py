"""One registry pattern for every kind of plugin (inference backends, face detectors, sources, outputs).

In the manner of Frigate's detector plugins: each plugin is one module in its kind's package, holding a
pydantic config with ``type: Literal["name"]`` and a class with the same ``type_key``. Adding a plugin means
adding one file. Plugin modules import their heavy or optional library lazily (inside methods), so discovery
never fails because, say, picamera2 or gpiozero is absent on this machine.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import BaseModel, ConfigDict


class PluginConfig(BaseModel):
    """Base of every plugin config: unknown keys are rejected, so a typo in the YAML names its field."""

    model_config = ConfigDict(extra="forbid")

    type: str


class Unavailable(RuntimeError):
    """The library a plugin needs is not installed (or the hardware is not there)."""


_CACHE: dict[tuple[str, type], dict[str, type]] = {}


def discover(package: str, base: type) -> dict[str, Any]:
    """``type_key`` -> class for every subclass of ``base`` defined in the modules of ``package``."""
    key = (package, base)
    if key not in _CACHE:
        found: dict[str, type] = {}
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{package}.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, base) and obj is not base and getattr(obj, "type_key", ""):
                    found[obj.type_key] = obj
        _CACHE[key] = found
    return dict(_CACHE[key])


def config_union(package: str, base: type) -> tuple[type, ...]:
    """The config classes of a plugin kind, for a pydantic discriminated union on ``type``."""
    return tuple(cls.config_class for cls in discover(package, base).values())
