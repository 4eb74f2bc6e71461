"""NVIDIA Jetson: the jetson target's ONNX through TensorRT, onnxruntime's TensorRT/CUDA providers, or its CPU one.

Why three paths in one backend: the TensorRT engine is built on the board (``NAME.build_engine.sh``, run by the
first-boot unit) and is tied to that GPU and TensorRT version, so a fresh board, a JetPack upgrade or a missing
CUDA Python binding must still run the monitor. Order: a built engine with TensorRT's Python API (plus
cuda-python for device buffers); else onnxruntime with the TensorRT or CUDA provider when that build is installed
(NVIDIA's Jetson wheels); else onnxruntime's CPU provider, said plainly in the log and in ``describe()``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edgefer.edge.backends import Backend, BackendConfig, BackendUnavailable, dequantize_output, quantize_input
from edgefer.edge.contract import ModelContract
from edgefer.edge.qdq import QdqArithmetic, QdqRefused, session_options

log = logging.getLogger("edgefer.backends")

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class TensorRTConfig(BackendConfig):
    type: Literal["tensorrt"] = "tensorrt"
    threads: int = Field(1, ge=1, le=64, description="CPU threads (onnxruntime CPU provider)")
    engine: str | None = Field(None, description="engine file; null: NAME.engine beside the ONNX model")
    use_engine: bool = Field(True, description="false: skip the TensorRT engine, use onnxruntime")
    qdq_arithmetic: QdqArithmetic = Field(
        "reference", description="onnxruntime fallback with an int8 QDQ model: reference (Q/DQ as reference ops, "
        "as TensorRT computes), fused (integer kernels: they can saturate on x86), refuse (an error on x86)")


def engine_path(model_path: Path, config: TensorRTConfig) -> Path:
    return Path(config.engine) if config.engine else model_path.with_suffix(".engine")


class _TrtEngine:
    """A deserialised engine with one float32 input and output, run with the TensorRT 10 tensor-address API."""

    def __init__(self, path: Path) -> None:
        import tensorrt as trt
        from cuda import cudart  # cuda-python; JetPack: pip install cuda-python

        self.trt, self.cudart = trt, cudart
        info = path.with_name(path.name + ".json")
        if info.is_file():
            built = json.loads(info.read_text()).get("tensorrt", "")
            if built and built.split(".")[:2] != trt.__version__.split(".")[:2]:
                raise RuntimeError(f"{path.name} was built with TensorRT {built}, this is {trt.__version__}: rebuild "
                                   "it (sh NAME.build_engine.sh)")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{path}: TensorRT could not deserialise it (another GPU or TensorRT version?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.out_shape = tuple(self.engine.get_tensor_shape(self.output))
        in_bytes = int(np.prod(self.engine.get_tensor_shape(self.input))) * 4
        self.out_host = np.empty(self.out_shape, dtype=np.float32)
        _, self.d_in = cudart.cudaMalloc(in_bytes)
        _, self.d_out = cudart.cudaMalloc(self.out_host.nbytes)
        _, self.stream = cudart.cudaStreamCreate()
        self.context.set_tensor_address(self.input, int(self.d_in))
        self.context.set_tensor_address(self.output, int(self.d_out))

    def run(self, x: np.ndarray) -> np.ndarray:
        cudart = self.cudart
        x = np.ascontiguousarray(x, dtype=np.float32)
        kind = cudart.cudaMemcpyKind
        cudart.cudaMemcpyAsync(self.d_in, x.ctypes.data, x.nbytes, kind.cudaMemcpyHostToDevice, self.stream)
        self.context.execute_async_v3(self.stream)
        cudart.cudaMemcpyAsync(self.out_host.ctypes.data, self.d_out, self.out_host.nbytes,
                               kind.cudaMemcpyDeviceToHost, self.stream)
        cudart.cudaStreamSynchronize(self.stream)
        return self.out_host.copy()


class TensorRTBackend(Backend):
    type_key = "tensorrt"
    formats = ("onnx",)
    config_class = TensorRTConfig

    def __init__(self, model_path: Path, contract: ModelContract, config: TensorRTConfig) -> None:
        super().__init__(model_path, contract, config)
        self.engine: _TrtEngine | None = None
        self.session = None
        self.how = ""
        engine = engine_path(model_path, config)
        if config.use_engine and engine.is_file():
            try:
                self.engine = _TrtEngine(engine)
                self.how = f"TensorRT engine {engine.name}"
                return
            except ImportError as exc:
                log.warning("engine %s present but TensorRT's Python API is not importable (%s): using onnxruntime",
                            engine.name, exc)
            except RuntimeError as exc:
                log.warning("engine %s not usable (%s): using onnxruntime", engine.name, exc)
        elif config.use_engine:
            log.info("no TensorRT engine %s yet (built on the board by NAME.build_engine.sh)", engine.name)
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("neither TensorRT (python3-libnvinfer) nor onnxruntime is installed: "
                                     "pip install onnxruntime (or NVIDIA's onnxruntime-gpu for Jetson)") from None
        available = ort.get_available_providers()
        providers = [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]
        if providers == ["CPUExecutionProvider"]:
            try:
                options, arithmetic = session_options(ort, model_path, config.threads, config.qdq_arithmetic)
            except QdqRefused as exc:
                raise BackendUnavailable(str(exc)) from None
        else:  # the Q/DQ policy is about onnxruntime's CPU kernels; a GPU provider takes the QDQ graph as it is
            options, arithmetic = ort.SessionOptions(), ""
            options.intra_op_num_threads = config.threads
        provider_options = [{"trt_engine_cache_enable": "True",
                             "trt_engine_cache_path": str(model_path.parent / "trt-cache")}
                            if p == "TensorrtExecutionProvider" else {} for p in providers]
        self.session = ort.InferenceSession(str(model_path), options, providers=providers,
                                            provider_options=provider_options)
        used = self.session.get_providers()[0]
        self._input = self.session.get_inputs()[0].name
        if used == "CPUExecutionProvider":
            self.how = "onnxruntime CPU provider (no TensorRT engine, no GPU provider: running on the CPU" + (
                f"; {arithmetic})" if arithmetic else ")")
            log.warning("Jetson backend for %s: no TensorRT engine and no GPU provider in this onnxruntime: "
                        "running on the CPU", model_path.name)
        else:
            self.how = f"onnxruntime {used}"

    def infer(self, crops: np.ndarray) -> np.ndarray:
        x = quantize_input(crops, self.contract)
        if self.engine is not None:
            outs = [self.engine.run(x[i:i + 1]).reshape(1, -1) for i in range(len(x))]
        else:
            outs = [self.session.run(None, {self._input: x[i:i + 1]})[0] for i in range(len(x))]
        if not outs:
            return np.zeros((0, len(self.contract.labels)), np.float32)
        return dequantize_output(np.concatenate(outs), self.contract)

    def describe(self) -> str:
        return f"tensorrt ({self.how}) {self.model_path.name}"
