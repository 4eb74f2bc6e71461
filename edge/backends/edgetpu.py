"""Coral Edge TPU: a ``*_edgetpu.tflite`` (from ``edgefer compile --target coral``) through ai-edge-litert with the
``libedgetpu.so.1`` delegate.

Why a fallback inside this backend: a compiled model holds one ``edgetpu-custom-op`` that only the delegate can
run, so when the accelerator or its library is missing (unplugged USB stick, libedgetpu not installed) the plain
CPU interpreter cannot load that file. The compile step ships the plain int8 model beside it (``NAME.tflite``,
same labels and quantisation); this backend then runs that one on the CPU and says so plainly in the log and in
``describe()``, instead of failing the monitor in a car.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgefer.edge.backends import Backend, BackendConfig, BackendUnavailable
from edgefer.edge.contract import ModelContract, load_contract

log = logging.getLogger("edgefer.backends")

DELEGATE = "libedgetpu.so.1"
INSTALL_HINT = ("install the Edge TPU runtime: add the Coral apt repository and sudo apt install libedgetpu1-std "
                "(board/coral/setup.sh); plug the USB accelerator into a USB 3 port")


class EdgeTPUConfig(BackendConfig):
    type: Literal["edgetpu"] = "edgetpu"
    threads: int = Field(1, ge=1, le=64, description="CPU threads (used by the CPU fallback)")
    device: str | None = Field(None, description="':0', 'usb', 'usb:0', 'pci:0'; null: the first Edge TPU")
    delegate: str = Field(DELEGATE, description="the Edge TPU delegate library")


def load_edgetpu_delegate(library: str = DELEGATE, device: str | None = None):
    """The Edge TPU delegate, or BackendUnavailable saying why."""
    try:
        from ai_edge_litert.interpreter import load_delegate
    except ImportError:
        raise BackendUnavailable("no TFLite interpreter: pip install ai-edge-litert") from None
    import ctypes

    try:  # check first: a failed load_delegate leaves a half-built Delegate that complains when collected
        ctypes.CDLL(library)
    except OSError as exc:
        raise BackendUnavailable(f"Edge TPU delegate {library} not found ({exc}); {INSTALL_HINT}") from None
    try:
        return load_delegate(library, {"device": device} if device else {})
    except (ValueError, OSError, RuntimeError) as exc:
        raise BackendUnavailable(f"Edge TPU delegate {library} not loadable ({exc}); {INSTALL_HINT}") from None


def cpu_sibling(model_path: Path) -> Path | None:
    """``NAME_edgetpu.tflite`` -> ``NAME.tflite`` beside it, when present."""
    if not model_path.stem.endswith("_edgetpu"):
        return None
    sibling = model_path.with_name(model_path.stem[: -len("_edgetpu")] + ".tflite")
    return sibling if sibling.is_file() else None


class EdgeTPUBackend(Backend):
    type_key = "edgetpu"
    formats = ("tflite",)
    config_class = EdgeTPUConfig

    def __init__(self, model_path: Path, contract: ModelContract, config: EdgeTPUConfig) -> None:
        super().__init__(model_path, contract, config)
        if contract.target != "coral":
            raise BackendUnavailable(f"{model_path.name} is built for target {contract.target!r}, not coral")
        from edgefer.edge.backends.litert import LiteRTBackend, LiteRTConfig, load_interpreter_class

        compiled = model_path.stem.endswith("_edgetpu")
        self.fallback: LiteRTBackend | None = None
        self.reason = ""
        try:
            delegate = load_edgetpu_delegate(config.delegate, config.device)
        except BackendUnavailable as exc:
            self.reason = str(exc)
            sibling = cpu_sibling(model_path) if compiled else model_path
            if sibling is None:
                raise BackendUnavailable(f"{exc}; and no CPU model {model_path.stem[:-8]}.tflite beside "
                                         f"{model_path.name} to fall back to") from None
            log.warning("no Edge TPU: %s. Falling back to the CPU: running %s with litert (XNNPACK).",
                        self.reason, sibling.name)
            self.fallback = LiteRTBackend(sibling, load_contract(sibling), LiteRTConfig(threads=config.threads))
            return
        if not compiled:
            log.warning("%s is not compiled for the Edge TPU (no _edgetpu.tflite): the delegate would run nothing; "
                        "running it on the CPU", model_path.name)
            self.fallback = LiteRTBackend(model_path, contract, LiteRTConfig(threads=config.threads))
            self.reason = "model not compiled for the Edge TPU"
            return
        interpreter_class, self.library = load_interpreter_class()
        self.interpreter = interpreter_class(model_path=str(model_path), experimental_delegates=[delegate],
                                             num_threads=config.threads)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        log.info("Edge TPU delegate %s loaded for %s", config.delegate, model_path.name)

    def infer(self, crops: np.ndarray) -> np.ndarray:
        if self.fallback is not None:
            return self.fallback.infer(crops)
        from edgefer.edge.backends.litert import invoke_each

        return invoke_each(self.interpreter, self._in, self._out, crops, self.contract)

    def describe(self) -> str:
        if self.fallback is not None:
            return f"edgetpu UNAVAILABLE ({self.reason}) -> CPU fallback: {self.fallback.describe()}"
        return f"edgetpu ({self.config.delegate}) {self.model_path.name}"
