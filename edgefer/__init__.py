"""edgefer: an in-car driver monitor and the toolchain that builds its tiny int8 models.

The library API, as short as ``fer``'s::

    import edgefer

    for face in edgefer.analyze("photo.jpg"):       # a path, or a grey / BGR uint8 numpy array
        print(face.box, face.top_expression, face.expression, face.eyes_open, face.yawn)

``edgefer.Analyzer(config)`` keeps the models of one config loaded for many images; the monitor itself is
``edgefer run`` (see the README).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefer.edge.api import Analyzer, Face, analyze

try:
    __version__ = version("edgefer")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Analyzer", "Face", "__version__", "analyze"]


def __getattr__(name: str):
    # Loaded on first use, so importing one submodule (a toolchain step, the CLI) does not load the runtime's
    # config and models machinery first.
    if name in ("Analyzer", "Face", "analyze"):
        from edgefer.edge import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgefer' has no attribute {name!r}")
