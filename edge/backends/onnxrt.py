"""ONNX models through onnxruntime (CPU provider; GPU providers when the Jetson build has them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgefer.edge.backends import Backend, BackendConfig, BackendUnavailable, dequantize_output, quantize_input
from edgefer.edge.contract import ModelContract
from edgefer.edge.qdq import QdqArithmetic, QdqRefused, session_options


class OnnxConfig(BackendConfig):
    type: Literal["onnxruntime"] = "onnxruntime"
    threads: int = Field(1, ge=1, le=64)
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    qdq_arithmetic: QdqArithmetic = Field(
        "reference", description="an int8 QDQ model: reference (Q/DQ as reference ops, the same answer on every "
        "host), fused (onnxruntime's integer kernels: faster, but they can saturate on x86), refuse (an error on x86)")


class OnnxBackend(Backend):
    type_key = "onnxruntime"
    formats = ("onnx",)
    config_class = OnnxConfig

    def __init__(self, model_path: Path, contract: ModelContract, config: OnnxConfig) -> None:
        super().__init__(model_path, contract, config)
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from None
        try:
            options, self.arithmetic = session_options(ort, model_path, config.threads, config.qdq_arithmetic)
        except QdqRefused as exc:
            raise BackendUnavailable(str(exc)) from None
        available = set(ort.get_available_providers())
        providers = [p for p in config.providers if p in available] or ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(model_path), options, providers=providers)
        self._input = self.session.get_inputs()[0].name

    def infer(self, crops: np.ndarray) -> np.ndarray:
        x = quantize_input(crops, self.contract)
        outs = [self.session.run(None, {self._input: x[i:i + 1]})[0] for i in range(len(x))]
        return dequantize_output(np.concatenate(outs), self.contract) if outs else np.zeros((0, 0), np.float32)

    def describe(self) -> str:
        how = f" ({self.arithmetic})" if self.arithmetic else ""
        return f"{self.type_key}{how}:{self.model_path.name}"
