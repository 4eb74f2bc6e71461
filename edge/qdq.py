"""How onnxruntime's CPU provider runs an int8 QDQ ONNX model, so that its verdict does not depend on the host.

With its default graph optimisation (ORT_ENABLE_ALL) onnxruntime fuses each DequantizeLinear -> op ->
QuantizeLinear group into an integer kernel (QLinearConv and friends). On x86 those kernels can saturate
(u8 x s8 pairs summed in int16 on hosts without VNNI, and a different path with it), so the same file gives
different answers on different x86 hosts: measured for ``fer-student``'s int8 QDQ ONNX on FER2013
PrivateTest, agreement with the float model 0.8217 fused against 0.9863 unfused. With ORT_ENABLE_BASIC the
Q/DQ nodes stay as reference operators (float arithmetic between exact quantise/dequantise steps), which is
the arithmetic TensorRT is asked to reproduce on a Jetson. So a QDQ model is judged, and by default run, with
the reference arithmetic; the fused figure is host-specific information only.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("edgefer.qdq")

#: ``reference``: Q/DQ kept as reference operators (host-independent; slower); ``fused``: onnxruntime's integer
#: kernels (fast, host-dependent on x86); ``refuse``: an int8 QDQ model is an error on x86.
QdqArithmetic = Literal["reference", "fused", "refuse"]
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
#: Operator names as they appear in the serialised graph (protobuf stores op_type as plain bytes), so a QDQ
#: model is recognised without the ``onnx`` package, which the device side does not install.
QDQ_OPS = (b"QuantizeLinear", b"DequantizeLinear")


class QdqRefused(RuntimeError):
    """An int8 QDQ model on x86 with ``qdq_arithmetic: refuse``."""


def is_x86(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in X86_MACHINES


def is_qdq_onnx(path: str | Path) -> bool:
    """True when the ONNX file holds QuantizeLinear and DequantizeLinear nodes (an explicitly quantised model)."""
    data = Path(path).read_bytes()
    return all(op in data for op in QDQ_OPS)


def session_options(ort: Any, path: str | Path, threads: int, arithmetic: QdqArithmetic = "reference",
                    machine: str | None = None) -> tuple[Any, str]:
    """SessionOptions for ``path`` and a note saying which arithmetic it runs (empty for a float model).

    One intra-op thread count is set explicitly: onnxruntime's default (one per core) would make the
    reduction order of a float model depend on the host's core count."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if not is_qdq_onnx(path):
        return options, ""
    on_x86 = is_x86(machine)
    if arithmetic == "refuse" and on_x86:
        raise QdqRefused(f"{path}: an int8 QDQ model (built for TensorRT) on an x86 host: onnxruntime's fused x86 "
                         "int8 kernels can saturate and give host-dependent answers; set qdq_arithmetic: "
                         "reference to run it with the reference Q/DQ arithmetic, or run it on the Jetson")
    if arithmetic == "fused":
        if on_x86:
            log.warning("%s: int8 QDQ run with onnxruntime's fused x86 integer kernels; they can saturate, so "
                        "its outputs depend on this host's CPU (qdq_arithmetic: reference avoids that)",
                        Path(path).name)
        return options, "fused int8 kernels" + (" (x86: host-dependent)" if on_x86 else "")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return options, "reference Q/DQ arithmetic (ORT_ENABLE_BASIC: no integer fusion)"
