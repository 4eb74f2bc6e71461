"""The coral target: a full-int8 TFLite the Edge TPU accepts, checked before compiling, compiled when possible.

Why a pre-compile report: Google's ``edgetpu_compiler`` exists only for x86_64 Debian/Ubuntu and is not
obtainable on every build host (not here). Its rules are documented, though (coral.ai/docs/edgetpu/models-intro):
quantised 8-bit tensors, sizes fixed at compile time, tensors of at most 3 dimensions larger than 1 (the
innermost), only the listed operations with their limits, and a single partition: the first operation the Edge
TPU cannot run sends it and everything after it to the CPU. Checking those on the model itself tells the owner
what the compiler will do, and the report prints the exact command to run where the compiler exists. When it is
on PATH it is run and its log parsed (operations mapped vs on the CPU, on-chip memory used).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.compile.artifacts import TargetError, write_artifact
from edgefer.edge.contract import ModelContract

#: Operations the Edge TPU runs (TFLite builtin names) and their documented limits.
EDGETPU_OPS: dict[str, str] = {
    "ADD": "", "AVERAGE_POOL_2D": "no fused activation", "CONCATENATION": "no fused activation",
    "CONV_2D": "same dilation in x and y", "DEPTHWISE_CONV_2D": "same dilation in x and y", "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "default weight format; output one-dimensional", "L2_NORMALIZATION": "", "LOGISTIC": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional only", "MAXIMUM": "", "MAX_POOL_2D": "no fused activation",
    "MEAN": "no reduction in the batch dimension; a z-reduction needs z a multiple of 4", "MINIMUM": "", "MUL": "",
    "PACK": "not in the batch dimension", "PAD": "no padding in the batch dimension",
    "PRELU": "alpha one-dimensional", "QUANTIZE": "", "REDUCE_MAX": "not on the batch dimension",
    "REDUCE_MIN": "not on the batch dimension", "RELU": "", "RELU6": "", "RELU_N1_TO_1": "",
    "RESHAPE": "large reshapes may stay on the CPU", "RESIZE_BILINEAR": "3-D input/output",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output", "RSQRT": "", "SLICE": "", "SOFTMAX": "1-D input, at most 16,000",
    "SPACE_TO_DEPTH": "", "SPLIT": "not in the batch dimension", "SQUEEZE": "", "STRIDED_SLICE": "",
    "SUB": "", "SUM": "not on the batch dimension", "SQUARED_DIFFERENCE": "", "TANH": "", "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}
#: The USB accelerator and the Dev Board have 8 MiB of SRAM; the compiler caches parameters in what it leaves.
ONCHIP_BYTES = 8 * 1024 * 1024
DOCS = "https://coral.ai/docs/edgetpu/models-intro/"


def compiler_command(model: Path, out_dir: Path, compiler: str = "edgetpu_compiler") -> list[str]:
    """``-s`` prints the per-operation mapping; the output is ``NAME_edgetpu.tflite`` + ``NAME_edgetpu.log``."""
    return [compiler, "-s", "-o", str(out_dir), str(model)]


def _non_unit(shape: list[int]) -> int:
    return sum(1 for d in shape if d != 1)


def check_model(path: str | Path) -> dict[str, Any]:
    """The Edge TPU's documented constraints, checked on a TFLite file: per-op placement prediction and problems."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without default delegates: XNNPACK would fold the ops into one DELEGATE node.
    interp = Interpreter(model_path=str(path), num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    ops = interp._get_ops_details()  # execution order; the only op-level API ai-edge-litert offers
    used = {int(i) for op in ops for i in list(op["inputs"]) + list(op["outputs"]) if int(i) >= 0}
    # Only tensors the graph's ops name: the reference kernels add scratch (im2col) tensors of their own.
    tensors = {t["index"]: t for t in interp.get_tensor_details() if t["index"] in used}
    produced = {int(i) for op in ops for i in op["outputs"]}
    graph_inputs = {int(d["index"]) for d in interp.get_input_details()}
    constants = {i for i in tensors if i not in produced and i not in graph_inputs}

    def const_value(index: int) -> np.ndarray | None:
        try:
            return np.asarray(interp.get_tensor(index))
        except ValueError:
            return None

    model_problems: list[str] = []
    for index, t in tensors.items():
        if list(t["shape_signature"]) != list(t["shape"]) or any(d < 0 for d in t["shape_signature"]):
            model_problems.append(f"tensor {t['name']!r} has a dynamic shape {list(t['shape_signature'])}")
        if index in constants:
            continue
        dtype = np.dtype(t["dtype"]).name
        if dtype not in ("int8", "uint8"):
            model_problems.append(f"tensor {t['name']!r} is {dtype}: the Edge TPU needs 8-bit quantised tensors")
        if _non_unit([int(d) for d in t["shape"]]) > 3:
            model_problems.append(f"tensor {t['name']!r} {list(t['shape'])} has more than 3 dimensions above 1")
        elif len(t["shape"]) > 3 and any(int(d) != 1 for d in t["shape"][:-3]):
            model_problems.append(f"tensor {t['name']!r} {list(t['shape'])}: only the 3 innermost dimensions may "
                                  "be above 1")

    rows: list[dict[str, Any]] = []
    on_cpu_from: int | None = None
    for n, op in enumerate(ops):
        name = op["op_name"]
        why: list[str] = []
        if name not in EDGETPU_OPS:
            why.append("not an Edge TPU operation")
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        outs = [int(i) for i in op["outputs"]]
        for i in ins + outs:
            if i in constants:
                continue
            t = tensors[i]
            if np.dtype(t["dtype"]).name not in ("int8", "uint8"):
                why.append(f"{np.dtype(t['dtype']).name} tensor {t['name']!r}")
            if _non_unit([int(d) for d in t["shape"]]) > 3:
                why.append(f"tensor {list(t['shape'])} has more than 3 dimensions above 1")
        if name == "PAD" and len(ins) > 1 and (pads := const_value(ins[1])) is not None and pads.ndim == 2 \
                and pads.shape[0] == 4 and np.any(pads[0] != 0):
            why.append("pads the batch dimension")
        if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN") and len(ins) > 1 \
                and (axes := const_value(ins[1])) is not None:
            rank = len(tensors[ins[0]]["shape"])
            axes_list = sorted(int(a) % rank for a in np.atleast_1d(axes))
            if 0 in axes_list:
                why.append("reduces the batch dimension")
            if name == "MEAN" and rank - 1 in axes_list and int(tensors[ins[0]]["shape"][-1]) % 4:
                why.append("z-reduction with z not a multiple of 4")
        if name == "FULLY_CONNECTED" and _non_unit([int(d) for d in tensors[outs[0]]["shape"]]) > 1:
            why.append("output is not one-dimensional")
        if why and on_cpu_from is None:
            on_cpu_from = n
        placement = "Edge TPU" if on_cpu_from is None else "CPU"
        rows.append({"index": n, "op": name, "placement": placement,
                     "why": "; ".join(why) if why else ("" if placement == "Edge TPU" else
                                                        "after the first unsupported op (one partition only)")})
    param_bytes = int(sum(np.prod(tensors[i]["shape"]) * np.dtype(tensors[i]["dtype"]).itemsize
                          for i in constants))
    mapped = sum(r["placement"] == "Edge TPU" for r in rows)
    io = {"input": [(list(map(int, d["shape"])), np.dtype(d["dtype"]).name) for d in interp.get_input_details()],
          "output": [(list(map(int, d["shape"])), np.dtype(d["dtype"]).name) for d in interp.get_output_details()]}
    return {
        "device": "Coral Edge TPU",
        "model": str(path),
        "ops_total": len(rows), "ops_on_edgetpu": mapped, "ops_on_cpu": len(rows) - mapped,
        "first_cpu_op": None if on_cpu_from is None else rows[on_cpu_from],
        "ops": rows,
        "model_problems": model_problems,
        "parameter_bytes": param_bytes,
        "onchip_bytes": ONCHIP_BYTES,
        "parameters_fit_onchip": param_bytes < ONCHIP_BYTES,
        "io": io,
        "compatible": not model_problems and on_cpu_from is None,
        "source": DOCS,
    }


_LOG_PATTERNS = {
    "compiler_version": r"Edge TPU Compiler version\s+(\S+)",
    "onchip_used": r"On-chip memory used for caching model parameters:\s*(\S+)",
    "onchip_remaining": r"On-chip memory remaining for caching model parameters:\s*(\S+)",
    "offchip_used": r"Off-chip memory used for streaming uncached model parameters:\s*(\S+)",
    "subgraphs": r"Number of Edge TPU subgraphs:\s*(\d+)",
    "ops_total": r"Total number of operations:\s*(\d+)",
    "ops_on_edgetpu": r"Number of operations that will run on Edge TPU:\s*(\d+)",
    "ops_on_cpu": r"Number of operations that will run on CPU:\s*(\d+)",
}


def parse_compiler_log(text: str) -> dict[str, Any]:
    """The figures ``edgetpu_compiler -s`` prints, and its operator table (op, count, status)."""
    result: dict[str, Any] = {}
    for key, pattern in _LOG_PATTERNS.items():
        m = re.search(pattern, text)
        if m:
            result[key] = int(m.group(1)) if m.group(1).isdigit() else m.group(1)
    table = []
    for m in re.finditer(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$", text, flags=re.M):
        table.append({"op": m.group(1), "count": int(m.group(2)), "status": m.group(3)})
    result["operators"] = table
    if "ops_on_edgetpu" not in result and table:  # every op mapped: the compiler omits the two count lines
        result["ops_on_edgetpu"] = sum(r["count"] for r in table if r["status"].startswith("Mapped to Edge TPU"))
        result["ops_on_cpu"] = sum(r["count"] for r in table) - result["ops_on_edgetpu"]
    result["compiled"] = "compiled successfully" in text
    return result


def format_report(check: dict[str, Any], command: list[str], compiled: dict[str, Any] | None) -> str:
    lines = [f"Coral Edge TPU compatibility report for {Path(check['model']).name}",
             f"(checked against the documented Edge TPU constraints and operation list: {DOCS})", ""]
    verdict = "COMPATIBLE: every operation should map to the Edge TPU" if check["compatible"] else \
        "NOT fully compatible"
    lines += [f"verdict: {verdict}",
              f"operations: {check['ops_total']} total, {check['ops_on_edgetpu']} predicted on the Edge TPU, "
              f"{check['ops_on_cpu']} on the CPU",
              f"parameters: {check['parameter_bytes']:,} bytes of {check['onchip_bytes']:,} bytes of on-chip SRAM "
              f"({'fit' if check['parameters_fit_onchip'] else 'do not fit: the rest streams from host memory'})",
              f"input {check['io']['input']}, output {check['io']['output']}", ""]
    if check["model_problems"]:
        lines += ["model-level problems:"] + [f"  - {p}" for p in check["model_problems"]] + [""]
    lines.append(f"{'#':>3}  {'operation':24s} {'placement':9s} why")
    for r in check["ops"]:
        lines.append(f"{r['index']:>3}  {r['op']:24s} {r['placement']:9s} {r['why']}")
    lines.append("")
    if compiled is None:
        lines += ["edgetpu_compiler was not found on this host (it is published for x86_64 Debian/Ubuntu only:",
                  "https://coral.ai/docs/edgetpu/compiler/). Compile on such a host with exactly:", "",
                  "  " + " ".join(command), "",
                  "or install the compiler and run `edgefer compile --target coral` again: it then runs it, parses "
                  "its log and writes NAME_edgetpu.tflite with its sidecar."]
    else:
        lines += ["edgetpu_compiler ran: " + " ".join(command),
                  f"  compiled: {compiled.get('compiled')}, version {compiled.get('compiler_version', '?')}",
                  f"  operations on the Edge TPU: {compiled.get('ops_on_edgetpu', '?')}, on the CPU: "
                  f"{compiled.get('ops_on_cpu', '?')}, subgraphs: {compiled.get('subgraphs', '?')}",
                  f"  on-chip memory used: {compiled.get('onchip_used', '?')}, remaining: "
                  f"{compiled.get('onchip_remaining', '?')}, off-chip: {compiled.get('offchip_used', '?')}"]
    return "\n".join(lines) + "\n"


def build_coral(path: Path, contract: ModelContract, out: Path, compiler: str | None = None) -> dict[str, Any]:
    """Write NAME.tflite (+ sidecar, target coral), the compatibility report, and NAME_edgetpu.tflite (+ sidecar)
    when the compiler is available."""
    import json

    from edgefer.edge.contract import sidecar_path

    name = contract.name
    model = write_artifact(path, out / f"{name}.tflite", contract, target="coral", threads=1)
    check = check_model(model)
    exe = shutil.which(compiler) if compiler else shutil.which("edgetpu_compiler")
    if compiler and exe is None:
        raise TargetError(f"--edgetpu-compiler {compiler}: not an executable")
    command = compiler_command(model, out, exe or "edgetpu_compiler")
    artifacts = [model.name, sidecar_path(model).name]
    compiled = None
    if exe:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
        log = proc.stdout + proc.stderr
        (out / f"{name}.edgetpu-compiler.log").write_text(log)
        compiled = parse_compiler_log(log)
        compiled["exit_code"] = proc.returncode
        tpu_model = out / f"{name}_edgetpu.tflite"
        if proc.returncode != 0 or not tpu_model.is_file():
            raise TargetError(f"edgetpu_compiler failed (exit {proc.returncode}); log in "
                              f"{out / (name + '.edgetpu-compiler.log')}:\n{log[-1500:]}")
        metrics = {**contract.metrics, "edgetpu": {k: v for k, v in compiled.items() if k != "operators"}}
        write_artifact(tpu_model, tpu_model, contract, target="coral", threads=1, metrics=metrics)
        artifacts += [tpu_model.name, sidecar_path(tpu_model).name]
    report = {**check, "compiler_command": command, "compiler": compiled}
    (out / f"{name}.edgetpu-report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{name}.edgetpu-report.txt").write_text(format_report(check, command, compiled))
    artifacts += [f"{name}.edgetpu-report.txt", f"{name}.edgetpu-report.json"]
    return {"artifacts": artifacts, "edgetpu": {k: report[k] for k in
                                                ("compatible", "ops_total", "ops_on_edgetpu", "ops_on_cpu",
                                                 "parameter_bytes", "compiler_command")},
            "compiled": compiled is not None}
