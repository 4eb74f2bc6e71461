"""``edgefer compile --target``: what each deployment target gets, in one capability table.

Why a table: the four targets differ in artifacts (int8 TFLite, Edge-TPU-compiled TFLite, QDQ ONNX + a TensorRT
build script), in the options that mean anything for them and in what the host must have. Keeping that in data
lets one function refuse an unsupported combination with a message naming what is allowed, instead of each
target failing its own way halfway through. Every artifact gets its sidecar (the model contract) naming the
target, so the runtime can tell an Edge TPU or Jetson model from a plain CPU one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefer.compile.artifacts import TargetError, write_artifact
from edgefer.compile.coral import build_coral
from edgefer.compile.jetson import build_jetson
from edgefer.edge.contract import ModelContract, load_contract, sidecar_path


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    #: file name suffixes written to DIR (after the model name; ``.json`` is each artifact's sidecar)
    artifacts: tuple[str, ...]
    #: options (``edgefer compile`` flags, as keyword names) that apply; anything else is refused
    options: tuple[str, ...]
    #: options that must be given
    required: tuple[str, ...] = ()
    #: Python modules the host needs to build this target
    host_modules: tuple[str, ...] = ()
    #: programs used when on PATH (the build degrades gracefully without them)
    optional_tools: tuple[str, ...] = ()
    max_threads: int = 1
    notes: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)


TARGETS: dict[str, Target] = {
    "cpu": Target(
        name="cpu", description="any Linux CPU (x86_64, aarch64): full-int8 TFLite on ai-edge-litert + XNNPACK",
        artifacts=(".tflite", ".json"), options=("threads",), host_modules=("ai_edge_litert",), max_threads=64,
        defaults={"threads": 1}),
    "rpi": Target(
        name="rpi", description="Raspberry Pi 4/5 (Cortex-A72/A76, 4 cores): full-int8 TFLite, XNNPACK threads "
                                "in the sidecar",
        artifacts=(".tflite", ".json"), options=("threads",), host_modules=("ai_edge_litert",), max_threads=4,
        defaults={"threads": 1},
        notes="a 3 M-MAC model gains nothing from more threads; the detector and the other models share the cores"),
    "coral": Target(
        name="coral", description="Coral Edge TPU (USB accelerator on a Pi, or the Dev Board): full-int8 TFLite "
                                  "checked against the Edge TPU's constraints, compiled when edgetpu_compiler exists",
        artifacts=(".tflite", ".json", "_edgetpu.tflite", "_edgetpu.json", ".edgetpu-report.txt",
                   ".edgetpu-report.json"),
        options=("edgetpu_compiler",), host_modules=("ai_edge_litert",), optional_tools=("edgetpu_compiler",),
        notes="_edgetpu.tflite and its sidecar only when edgetpu_compiler ran (x86_64 Debian/Ubuntu only)"),
    "jetson": Target(
        name="jetson", description="NVIDIA Jetson (JetPack 6, TensorRT 10+): float ONNX (opset 17, static), int8 "
                                   "QDQ ONNX from onnxruntime static quantisation, and a trtexec build script",
        artifacts=(".onnx", ".json", ".int8.onnx", ".int8.json", ".jetson-parity.json", ".build_engine.sh"),
        options=("data", "calib_count", "split", "min_agreement", "max_drop"), required=("data",),
        host_modules=("onnx", "onnxruntime", "ai_edge_litert"),
        defaults={"calib_count": 400, "split": "PrivateTest", "min_agreement": 0.97, "max_drop": 0.005},
        notes="the TensorRT engine is built on the board (engines are tied to the GPU and the TensorRT version)"),
}

#: what each option is, for error messages and --help
OPTION_HELP = {
    "threads": "--threads N (XNNPACK threads written to the sidecar)",
    "edgetpu_compiler": "--edgetpu-compiler PATH (default: edgetpu_compiler on PATH)",
    "data": "--data fer2013.csv(.gz)|IMAGE_ROOT (calibration images from its training split, parity on its test split)",
    "calib_count": "--calib-count N (calibration images)",
    "split": "--split NAME (test split for the parity check)",
    "min_agreement": "--min-agreement F (int8 ONNX vs float ONNX top-1 agreement required)",
    "max_drop": "--max-drop F (float ONNX accuracy - int8 ONNX accuracy allowed, as a fraction)",
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}; one of: {', '.join(TARGETS)}")
    return TARGETS[name]


def check_options(target: Target, options: dict[str, Any]) -> dict[str, Any]:
    """The options with the target's defaults filled in; refuses options the target does not take, missing
    required ones, and thread counts past what the board has."""
    given = {k: v for k, v in options.items() if v is not None}
    stray = sorted(set(given) - set(target.options))
    if stray:
        allowed = ", ".join(OPTION_HELP[o].split(" ")[0] for o in target.options) or "none"
        flags = ", ".join(OPTION_HELP.get(s, s).split(" ")[0] for s in stray)
        raise TargetError(f"target {target.name} does not take {flags} (options for {target.name}: {allowed})")
    missing = [r for r in target.required if r not in given]
    if missing:
        raise TargetError(f"target {target.name} needs " + "; ".join(OPTION_HELP[m] for m in missing))
    values = {**target.defaults, **given}
    if "threads" in values and not 1 <= int(values["threads"]) <= target.max_threads:
        raise TargetError(f"target {target.name}: --threads {values['threads']} is outside 1..{target.max_threads}")
    return values


def check_host(target: Target) -> list[str]:
    """Missing host modules (an error) are raised; missing optional tools are returned as notes."""
    missing = [m for m in target.host_modules if importlib.util.find_spec(m) is None]
    if missing:
        raise TargetError(f"target {target.name} needs {', '.join(missing)} on this host: "
                          "pip install -e '.[toolchain]'")
    return [f"{tool} not on PATH" for tool in target.optional_tools if shutil.which(tool) is None]


def source_model(model: str | Path) -> tuple[Path, ModelContract]:
    """The shipped int8 TFLite (by name, or a path) and its verified contract."""
    from edgefer.edge.models import resolve

    path = resolve(model)
    if path.suffix != ".tflite":
        raise TargetError(f"{path}: compile starts from a full-int8 .tflite with its sidecar (and its .onnx beside "
                          "it for jetson)")
    contract = load_contract(path)
    if contract.input.dtype == "float32":
        raise TargetError(f"{path}: not a full-integer model (input {contract.input.dtype})")
    return path, contract


def compile_target(target_name: str, out: str | Path, model: str | Path = "fer-student",
                   **options: Any) -> dict[str, Any]:
    """Build ``model`` for ``target_name`` into ``out``; returns a summary (also written as
    ``out/NAME.<target>.compile.json``)."""
    target = get_target(target_name)
    values = check_options(target, options)
    notes = check_host(target)
    path, contract = source_model(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = contract.name
    summary: dict[str, Any] = {"target": target.name, "model": name, "source": str(path), "notes": notes,
                               "options": values}
    if target.name in ("cpu", "rpi"):
        dest = write_artifact(path, out / f"{name}.tflite", contract, target=target.name, threads=values["threads"])
        summary["artifacts"] = [dest.name, sidecar_path(dest).name]
    elif target.name == "coral":

        summary.update(build_coral(path, contract, out, compiler=values.get("edgetpu_compiler")))
    else:

        summary.update(build_jetson(path, contract, out, data=values["data"], calib_count=values["calib_count"],
                                    split=values["split"], min_agreement=values["min_agreement"],
                                    max_drop=values["max_drop"]))
    (out / f"{name}.{target.name}.compile.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def describe_table() -> str:
    """The capability table as text (``edgefer compile --list``)."""
    lines = []
    for t in TARGETS.values():
        opts = ", ".join(OPTION_HELP[o].split(" (")[0] for o in t.options) or "-"
        lines.append(f"{t.name:7s} {t.description}\n        artifacts: {' '.join(t.artifacts)}\n"
                     f"        options: {opts}" + (f" (required: {', '.join(t.required)})" if t.required else "")
                     + (f"\n        host: {', '.join(t.host_modules)}" if t.host_modules else "")
                     + (f"; uses when present: {', '.join(t.optional_tools)}" if t.optional_tools else "")
                     + (f"\n        note: {t.notes}" if t.notes else ""))
    return "\n".join(lines)
