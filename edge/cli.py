"""``edgefer``: one console command; each subcommand is a thin wrapper over a plain function.

Device subcommands import only the device set (numpy, OpenCV, ai-edge-litert). The toolchain's verbs live with
the toolchain (``compile/cli.py``) and join this command through the ``edgefer.commands`` entry-point group, so
nothing here imports ``compile``. ``python -m edgefer VERB`` works too (``torchrun ... -m edgefer teacher ...``
runs the training verbs data-parallel).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

START = time.perf_counter()  # the first processed frame is timed from here (the console entry point)

from edgefer.edge.contract import ContractError  # noqa: E402
from edgefer.edge.samples import SAMPLE_IMAGES, sample_image_path  # noqa: E402


def predict_image(path: str | Path, model: str = "fer-student", backend: str | None = None) -> dict:
    """Faces in one image, largest first, each with its expression probabilities."""
    from edgefer.edge.crop import crop
    from edgefer.edge.detectors.haar import HaarFaceDetector
    from edgefer.edge.models import Classifier
    from edgefer.edge.sources.folder import read_image

    path = Path(path)
    decoded = read_image(path, grey_only=True)  # any depth, as analyze reads it
    if decoded is None:
        raise FileNotFoundError(f"{path}: not a readable image")
    image = decoded[0]
    classifier = Classifier(model, backend=backend)
    faces = []
    for det in HaarFaceDetector().detect(image):
        box = det.int_box
        patch = crop(image, box, classifier.contract.crop, classifier.input_size)
        probs = classifier.probabilities(patch[None])[0]
        expression = {k: round(float(p), 4) for k, p in zip(classifier.labels, probs, strict=True)}
        faces.append({"box": list(box), "expression": expression})
    return {"path": str(path), "model": classifier.contract.name, "backend": classifier.backend.describe(),
            "faces": faces}


def _cmd_predict(args: argparse.Namespace) -> int:
    paths = [sample_image_path(p) if p in SAMPLE_IMAGES else Path(p) for p in args.images or ["grace_hopper"]]
    for path in paths:
        result = predict_image(path, args.model, args.backend)
        if args.json:
            print(json.dumps(result))
            continue
        print(f"{result['path']}  ({result['backend']})")
        if not result["faces"]:
            print("  no face found")
        for face in result["faces"]:
            ranked = sorted(face["expression"].items(), key=lambda kv: -kv[1])
            print(f"  face at {face['box']}: " + ", ".join(f"{k} {p:.2f}" for k, p in ranked[:3]))
    return 0


def _monitor_config(args: argparse.Namespace):
    from edgefer.edge import config

    overrides: dict = {}
    if getattr(args, "source", None):
        overrides["source"] = config.source_from_arg(args.source)
    cfg = config.load(args.config, overrides)
    if getattr(args, "detector", None):
        cfg = config.validate({**cfg.model_dump(mode="json"), "detector": {"type": args.detector}})
    return cfg


def _cmd_run(args: argparse.Namespace) -> int:
    import logging

    from edgefer.edge.loop import run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = _monitor_config(args)
    summary = run(cfg, max_frames=args.max_frames, started=START)
    alerts = [e for e in summary.events if e.kind == "alert" and e.action == "raise"]
    fps = summary.frames / max(summary.seconds, 1e-9)
    first = "" if summary.first_frame_s is None else f"; first frame {summary.first_frame_s:.2f} s after start"
    print(f"edgefer run: {summary.frames} frames in {summary.seconds:.1f} s ({fps:.0f} fps), a face in "
          f"{summary.faces}, {summary.bad_frames} bad, {len(alerts)} alert(s) raised{first}", file=sys.stderr)
    return 0


def analyze_paths(paths: list[str], cfg) -> list[dict]:
    """One result per image (folders searched recursively): every face, the driver first."""
    from edgefer.edge.monitor import Monitor
    from edgefer.edge.sources.folder import list_images, read_image

    monitor = Monitor(cfg)
    results = []
    for arg in paths:
        root = Path(arg)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        for path in list_images(root):
            image = read_image(path, grey_only=True)
            if image is None:
                results.append({"path": str(path), "error": "not a readable image", "faces": []})
                continue
            results.append({"path": str(path), "faces": [f.to_json() for f in monitor.faces(image[0])]})
    return results


def _cmd_analyze(args: argparse.Namespace) -> int:
    cfg = _monitor_config(args)
    paths = [str(sample_image_path(p)) if p in SAMPLE_IMAGES else p for p in args.paths]
    for result in analyze_paths(paths, cfg):
        if args.json:
            print(json.dumps(result))
            continue
        print(result["path"] + ("  (" + result["error"] + ")" if "error" in result else ""))
        for i, face in enumerate(result["faces"]):
            expr = face["expression"] or {}
            top = ", ".join(f"{k} {p:.2f}" for k, p in sorted(expr.items(), key=lambda kv: -kv[1])[:3])
            role = "driver" if i == 0 else "face"
            print(f"  {role} at {[int(v) for v in face['box']]}: {top}  eyes_open={face['eyes_open']} "
                  f"yawn={face['yawn']}")
        if not result["faces"]:
            print("  no face found")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from edgefer.edge import bench
    from edgefer.edge.loop import run

    cfg = _monitor_config(args)
    # The bench measures the loop, not the console: events go to a null sink unless the config names outputs.
    from edgefer.edge.outputs import Dispatcher

    summary = run(cfg, max_frames=args.max_frames, dispatcher=Dispatcher([]), started=START, keep_timings=True)
    result = bench.report(summary, cfg.models.threads)
    if args.plot:
        result["plot"] = str(bench.plot_histogram(summary, args.plot, f"{result['source']} on {result['board']}"))
    if "warning" in result:
        print(f"edgefer bench: warning: {result['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['frames']} frames in {result['seconds']} s: {result['fps']} fps, a face in "
              f"{result['faces']}, peak RSS {result['rss_mb']} MB, on {result['board']}, "
              f"int8 features: {result['int8_features'] or 'unknown'}")
        for stage, st in result["stages"].items():
            print(f"  {stage:7s} p50 {st['p50']:7.3f}  p95 {st['p95']:7.3f}  p99 {st['p99']:7.3f} ms")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from edgefer.edge import config

    if args.check:
        config.load(args.check)
        print(f"{args.check}: valid")
        return 0
    print(config.dump_defaults(), end="")
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    from edgefer.edge.signing import generate_keypair

    result = generate_keypair(args.out, args.name)
    print(f"key {result['key_id']}: private {result['private']} (mode 0600: keep it on the build machine, never on a "
          f"device, never in git), public {result['public']} (goes to the devices)")
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    from edgefer.edge.contract import sidecar_path
    from edgefer.edge.signing import load_private_key, sign_file, sign_model

    key = load_private_key(args.key)
    for item in args.paths:
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        is_model = path.suffix in (".tflite", ".onnx") and sidecar_path(path).is_file()
        print(sign_model(path, key) if is_model else sign_file(path, key))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from edgefer.edge.signing import load_public_key, verify_file, verify_model
    from edgefer.edge.updates import verify_bundle

    key = load_public_key(args.key)
    for item in args.paths:
        path = Path(item)
        if path.is_dir() or path.name.endswith((".tar.gz", ".tgz")):
            result = verify_bundle(path, key)
            print(f"{path}: bundle OK, {result['files']} files signed by key {result['key_id']}")
        elif path.suffix in (".tflite", ".onnx"):
            print(f"{path}: model and sidecar OK, signed by key {verify_model(path, key)}")
        else:
            print(f"{path}: OK, signed by key {verify_file(path, key)}")
    return 0


def _cmd_bench_models(args: argparse.Namespace) -> int:
    from edgefer.edge import bench

    result = bench.model_latency(args.models or ["fer-student"], max_threads=args.threads, runs=args.runs,
                                 backend=args.backend)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"per-model latency on {result['board']}, int8 features: {result['int8_features'] or 'unknown'} "
          f"({result['runs']} runs each, median / p90 ms)")
    for m in result["models"]:
        cells = "  ".join(f"{t['threads']}t {t['median_ms']:.3f}/{t['p90_ms']:.3f}" for t in m["threads"])
        print(f"  {m['model']:24s} {m['backend']:10s} {cells}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgefer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="expression of the faces in images (default: a sample photo, no camera)")
    p.add_argument("images", nargs="*", help=f"image files, or a sample name: {', '.join(SAMPLE_IMAGES)}")
    p.add_argument("--model", default="fer-student", help="shipped model name or a .tflite/.onnx path")
    p.add_argument("--backend", help="inference backend (default: the first that runs the model)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("run", help="the driver monitor: camera (or the built-in demo) -> alerts, all local")
    p.add_argument("--source", help="demo | camera index | picamera | video file | image folder | GStreamer "
                                    "pipeline (default: the config's, else demo)")
    p.add_argument("--config", help="YAML config (see 'edgefer config')")
    p.add_argument("--detector", help="face detector: haar | blazeface")
    p.add_argument("--max-frames", dest="max_frames", type=int, help="stop after N frames")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("analyze", help="faces, expression, eye state and yawn in images; JSON per image")
    p.add_argument("paths", nargs="+", help="images or folders (recursive), or a sample name: grace_hopper")
    p.add_argument("--config")
    p.add_argument("--detector", help="face detector: haar | blazeface")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("bench", help="the full loop as fast as it runs: fps, per-stage p50/p95/p99, peak RSS")
    p.add_argument("--source", default="demo")
    p.add_argument("--config")
    p.add_argument("--detector", help="face detector: haar | blazeface")
    p.add_argument("--max-frames", dest="max_frames", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", help="write a PNG latency histogram here")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("config", help="print the default config (YAML), or check a file")
    p.add_argument("--check", metavar="FILE", help="validate FILE and exit")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("keygen", help="make an ed25519 key pair for signing models and bundles")
    p.add_argument("--out", required=True, help="folder for NAME.key (private, 0600) and NAME.pub; never overwritten")
    p.add_argument("--name", default="edgefer", help="file name stem (default: edgefer)")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser("sign", help="sign models (with their sidecars) or any file: writes FILE.sig beside it")
    p.add_argument("paths", nargs="+", help=".tflite/.onnx models with their .json sidecar, or other files")
    p.add_argument("--key", required=True, help="the ed25519 private key (edgefer keygen)")
    p.set_defaults(func=_cmd_sign)

    p = sub.add_parser("verify", help="check models, bundles (archive or unpacked folder) or files against a key")
    p.add_argument("paths", nargs="+")
    p.add_argument("--key", default="/etc/edgefer/trusted.pub", help="the public key (default: the device's)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("bench-models", help="model-only latency per model at 1..N threads (no camera, no detector)")
    p.add_argument("models", nargs="*", help="shipped model names or .tflite/.onnx paths (default: fer-student)")
    p.add_argument("--threads", type=int, default=4, help="measure 1..N threads")
    p.add_argument("--runs", type=int, default=500, help="timed invokes per model and thread count")
    p.add_argument("--backend")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench_models)

    for provider in command_providers():
        provider(sub)
    return parser


def command_providers() -> list:
    """Subcommands other packages add to ``edgefer`` through the ``edgefer.commands`` entry-point group (the
    toolchain's verbs: ``edgefer.compile.cli:register``). The device side never imports them: where a provider cannot be
    loaded (a board without the toolchain's dependencies), its verbs are simply absent."""
    from importlib.metadata import entry_points

    providers = []
    for point in sorted(entry_points(group="edgefer.commands"), key=lambda p: p.name):
        try:
            providers.append(point.load())
        except ImportError:
            continue
    return providers


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ContractError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"edgefer {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
