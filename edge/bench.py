"""``edgefer bench``: the full loop as fast as it runs, with per-stage latency percentiles, peak memory and
the board it ran on. Figures only; nothing here decides pass or fail."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import numpy as np

from edgefer.edge.loop import RunSummary
from edgefer.edge.monitor import STAGES

GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
BOARD_MODEL = Path("/proc/device-tree/model")


def board_name() -> str:
    """The board's own name where the device tree has it (a Pi, a Jetson), else the CPU and OS."""
    if BOARD_MODEL.is_file():
        return BOARD_MODEL.read_bytes().rstrip(b"\0").decode(errors="replace")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({platform.machine()}, {platform.system()})"


#: The CPU features that decide how fast XNNPACK's int8 kernels run: the same model and the same peer can
#: differ 4-6x in their speed ratio between an AVX2-only and an AVX-512 VNNI host (seen on this project's VM).
INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve")


def int8_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The INT8_FEATURES this CPU reports in /proc/cpuinfo, space-separated ('' where unknown)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ""
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return " ".join(f for f in INT8_FEATURES if f in flags)


def machine_line() -> str:
    """One line naming the machine a figure was measured on: board or CPU, core count, int8 features."""
    features = int8_features()
    return f"{board_name()}, {os.cpu_count()} cores" + (f", int8 features: {features}" if features else "")


def governor_warning() -> str | None:
    try:
        governor = GOVERNOR.read_text().strip()
    except OSError:
        return None
    if governor != "performance":
        return (f"CPU governor is {governor!r}, not 'performance': figures will be slower and noisier "
                "(echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)")
    return None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def rss_mb() -> float:
    """This process's resident set now (VmRSS), in MB; NaN where /proc has no such line (not Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def stage_stats(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    out = {}
    for stage in [s for s in STAGES if s in timings] + [s for s in timings if s not in STAGES]:
        values = np.asarray(timings[stage], dtype=np.float64)
        if len(values):
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            out[stage] = {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3),
                          "mean": round(float(values.mean()), 3), "n": int(len(values))}
    return out


def report(summary: RunSummary, threads: int) -> dict:
    per_frame = sum((np.asarray(v) for k, v in summary.timings.items() if len(v) == summary.frames),
                    start=np.zeros(summary.frames))
    result = {
        "source": summary.source,
        "frames": summary.frames,
        "seconds": round(summary.seconds, 3),
        "fps": round(summary.frames / summary.seconds, 2) if summary.seconds else None,
        "faces": summary.faces,
        "bad_frames": summary.bad_frames,
        "rss_mb": round(peak_rss_mb(), 1),
        "first_frame_s": None if summary.first_frame_s is None else round(summary.first_frame_s, 3),
        "stages": stage_stats(summary.timings),
        "board": board_name(),
        "int8_features": int8_features(),
        "threads": threads,
    }
    if summary.frames and len(per_frame):
        result["frame_ms_p50"] = round(float(np.percentile(per_frame, 50)), 3)
    warning = governor_warning()
    if warning:
        result["warning"] = warning
    return result


def plot_histogram(summary: RunSummary, path: str | Path, title: str) -> Path:
    """A PNG of per-stage latency histograms (matplotlib is imported only here)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("the histogram needs matplotlib: pip install 'edgefer[demo]'") from None
    stages = [s for s in STAGES if summary.timings.get(s)]
    fig, axes = plt.subplots(len(stages), 1, figsize=(7, 1.6 * len(stages) + 0.8), squeeze=False)
    for ax, stage in zip(axes[:, 0], stages, strict=True):
        values = np.asarray(summary.timings[stage])
        ax.hist(values, bins=60, color="tab:blue")
        ax.set_yscale("log")
        p50, p99 = np.percentile(values, [50, 99])
        ax.axvline(p50, color="k", lw=1)
        ax.axvline(p99, color="tab:red", lw=1)
        ax.set_ylabel(stage, rotation=0, ha="right")
        ax.text(0.99, 0.8, f"p50 {p50:.2f} ms, p99 {p99:.2f} ms", transform=ax.transAxes, ha="right", fontsize=8)
    axes[-1, 0].set_xlabel("ms per frame")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def model_latency(models: list[str], max_threads: int = 4, runs: int = 500, backend: str | None = None,
                  warmup: int = 20) -> dict:
    """Model-only latency: each model's backend ``infer`` on one crop, at 1..``max_threads`` threads (median and
    p90 of ``runs`` calls after ``warmup``). No camera, detector or tracking, so a Pi owner can compare per-model
    figures with ``board/reference/*.json`` directly."""
    import time

    from edgefer.edge.models import Classifier

    rows = []
    for name in models:
        per_thread = []
        described = ""
        for threads in range(1, max_threads + 1):
            clf = Classifier(name, backend=backend, threads=threads)
            described = clf.backend.type_key
            h, w = clf.contract.input.height, clf.contract.input.width
            crop = np.random.default_rng(0).integers(0, 256, (1, h, w), dtype=np.uint8)
            for _ in range(warmup):
                clf.backend.infer(crop)
            times = np.empty(runs)
            for i in range(runs):
                t0 = time.perf_counter()
                clf.backend.infer(crop)
                times[i] = (time.perf_counter() - t0) * 1000.0
            per_thread.append({"threads": threads, "median_ms": round(float(np.median(times)), 4),
                               "p90_ms": round(float(np.percentile(times, 90)), 4)})
        rows.append({"model": name, "backend": described, "threads": per_thread})
    result = {"board": board_name(), "int8_features": int8_features(), "runs": runs, "models": rows}
    warning = governor_warning()
    if warning:
        result["warning"] = warning
    return result
