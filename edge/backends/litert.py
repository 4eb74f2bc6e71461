"""TFLite on the CPU with XNNPACK: ai-edge-litert, else tflite-runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgefer.edge.backends import Backend, BackendConfig, BackendUnavailable, dequantize_output, quantize_input
from edgefer.edge.contract import ContractError, ModelContract


def load_interpreter_class():
    """The first TFLite interpreter that imports, and where it came from.

    TensorFlow's tf.lite is deliberately not a fallback: the device side never imports TensorFlow, and
    ai-edge-litert is the same interpreter in a wheel of a few MB.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise BackendUnavailable("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime)") from None


def invoke_each(interpreter, input_detail: dict, output_detail: dict, crops: np.ndarray,
                contract: ModelContract) -> np.ndarray:
    """Run a batch-1 TFLite model once per crop (the shipped models have a static batch of 1)."""
    x = quantize_input(crops, contract)
    out = np.empty((len(x), len(contract.labels)), dtype=np.float32)
    for i in range(len(x)):
        interpreter.set_tensor(input_detail["index"], x[i:i + 1])
        interpreter.invoke()
        out[i] = dequantize_output(interpreter.get_tensor(output_detail["index"]), contract).reshape(-1)
    return out


class LiteRTConfig(BackendConfig):
    type: Literal["litert"] = "litert"
    threads: int = Field(1, ge=1, le=64, description="XNNPACK threads")


class LiteRTBackend(Backend):
    type_key = "litert"
    formats = ("tflite",)
    config_class = LiteRTConfig

    def __init__(self, model_path: Path, contract: ModelContract, config: LiteRTConfig) -> None:
        super().__init__(model_path, contract, config)
        interpreter_class, self.library = load_interpreter_class()
        try:
            self.interpreter = interpreter_class(model_path=str(model_path), num_threads=config.threads)
        except (ValueError, RuntimeError) as exc:
            raise ContractError(f"{model_path}: not a loadable TFLite model ({exc})") from None
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self._check_contract()

    def _check_contract(self) -> None:
        spec = self.contract.input
        want = [1, spec.height, spec.width, spec.channels] if spec.layout == "NHWC" else \
            [1, spec.channels, spec.height, spec.width]
        got = [int(v) for v in self._in["shape"]]
        problems = []
        if got != want:
            problems.append(f"input shape {got}, sidecar says {want}")
        if np.dtype(self._in["dtype"]).name != spec.dtype:
            problems.append(f"input dtype {np.dtype(self._in['dtype']).name}, sidecar says {spec.dtype}")
        scale, zero = self._in["quantization"]
        if spec.dtype != "float32" and (abs(scale - spec.scale) > 1e-6 or zero != spec.zero_point):
            problems.append(f"input quantisation ({scale}, {zero}), sidecar says ({spec.scale}, {spec.zero_point})")
        if np.dtype(self._out["dtype"]).name != self.contract.output.dtype:
            problems.append(f"output dtype {np.dtype(self._out['dtype']).name}, sidecar says "
                            f"{self.contract.output.dtype}")
        scale, zero = self._out["quantization"]
        out_spec = self.contract.output
        if out_spec.dtype != "float32" and (abs(scale - out_spec.scale) > 1e-6 * max(1.0, scale)
                                            or zero != out_spec.zero_point):
            problems.append(f"output quantisation ({scale}, {zero}), sidecar says ({out_spec.scale}, "
                            f"{out_spec.zero_point})")
        n_out = int(np.prod(self._out["shape"]))
        if n_out != len(self.contract.labels):
            problems.append(f"{n_out} outputs, sidecar lists {len(self.contract.labels)} labels")
        if problems:
            raise ContractError(f"{self.model_path}: breaks its contract: " + "; ".join(problems))

    def infer(self, crops: np.ndarray) -> np.ndarray:
        return invoke_each(self.interpreter, self._in, self._out, crops, self.contract)

    def describe(self) -> str:
        return f"litert ({self.library}, {self.config.threads} thread(s), XNNPACK) {self.model_path.name}"
