"""``edgefer``: one console command; each subcommand is a thin wrapper over a plain function.

Device subcommands import only the device set (numpy, OpenCV, ai-edge-litert). Toolchain subcommands import
``compile`` (torch, onnx2tf, TensorFlow) lazily, so they fail with an install hint on a board, not at start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

START = time.perf_counter()  # the first processed frame is timed from here (the console entry point)
#: compile.augment.PRESETS' names, spelled out so the device side never imports the toolchain (a test keeps
#: the two equal).
AUGMENT_PRESETS = ("expression", "expression-car", "eye_state", "yawn")

from edge.contract import ContractError  # noqa: E402
from edge.samples import SAMPLE_IMAGES, sample_image_path  # noqa: E402


def predict_image(path: str | Path, model: str = "fer-student", backend: str | None = None) -> dict:
    """Faces in one image, largest first, each with its expression probabilities."""
    import cv2

    from edge.crop import crop
    from edge.detectors.haar import HaarFaceDetector
    from edge.models import Classifier

    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"{path}: not a readable image")
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
    from edge import config

    overrides: dict = {}
    if getattr(args, "source", None):
        overrides["source"] = config.source_from_arg(args.source)
    cfg = config.load(args.config, overrides)
    if getattr(args, "detector", None):
        cfg = config.validate({**cfg.model_dump(mode="json"), "detector": {"type": args.detector}})
    return cfg


def _cmd_run(args: argparse.Namespace) -> int:
    import logging

    from edge.monitor import run

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
    import cv2

    from edge.monitor import Monitor
    from edge.sources.folder import list_images

    monitor = Monitor(cfg)
    results = []
    for arg in paths:
        root = Path(arg)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        for path in list_images(root):
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                results.append({"path": str(path), "error": "not a readable image", "faces": []})
                continue
            results.append({"path": str(path), "faces": [f.to_json() for f in monitor.faces(gray)]})
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
    from edge import bench
    from edge.monitor import run

    cfg = _monitor_config(args)
    # The bench measures the loop, not the console: events go to a null sink unless the config names outputs.
    from edge.outputs import Dispatcher

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
    from edge import config

    if args.check:
        config.load(args.check)
        print(f"{args.check}: valid")
        return 0
    print(config.dump_defaults(), end="")
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    try:
        from compile.targets import TargetError, compile_target, describe_table
    except ImportError as exc:
        raise SystemExit(f"this subcommand needs the toolchain: pip install -e '.[toolchain]' ({exc})") from None
    if args.list:
        print(describe_table())
        return 0
    if not args.target or not args.out:
        raise SystemExit("edgefer compile: --target and --out are required (see --list)")
    options = {"threads": args.threads, "edgetpu_compiler": args.edgetpu_compiler, "data": args.data,
               "calib_count": args.calib_count, "split": args.split, "min_agreement": args.min_agreement,
               "max_drop": args.max_drop}
    try:
        summary = compile_target(args.target, args.out, model=args.model, **options)
    except TargetError as exc:
        raise SystemExit(f"edgefer compile: {exc}") from None
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from compile.bundle import BundleError, build_bundle

    try:
        result = build_bundle(args.board, args.out, wheelhouse=args.wheelhouse, offline=args.offline,
                              models=args.models, project_wheel=args.project_wheel)
    except BundleError as exc:
        raise SystemExit(f"edgefer bundle: {exc}") from None
    print(f"{result['bundle']}: {result['bytes'] / 1e6:.1f} MB, {len(result['wheels'])} wheels, models "
          f"{', '.join(result['models'])} (board {result['board']}, Python {result['python']})")
    return 0


def _cmd_flash(args: argparse.Namespace) -> int:
    from compile.bundle import BundleError
    from compile.deploy import DeployError, flash

    try:
        result = flash(args.bootfs, bundle=args.bundle, boot_path=args.boot_path, wheelhouse=args.wheelhouse)
    except (BundleError, DeployError) as exc:
        raise SystemExit(f"edgefer flash: {exc}") from None
    print(json.dumps(result, indent=1))
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from compile.bundle import BundleError
    from compile.deploy import DeployError, SshRunner, deploy

    runner = SshRunner(args.host, port=args.port, identity=args.identity)
    try:
        result = deploy(runner, board=args.board, bundle=args.bundle, wheelhouse=args.wheelhouse,
                        dry_run=args.dry_run)
    except (BundleError, DeployError) as exc:
        raise SystemExit(f"edgefer deploy: {exc}") from None
    print(json.dumps(result, indent=1))
    return 0


def _cmd_bench_models(args: argparse.Namespace) -> int:
    from edge import bench

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


def _toolchain():
    try:
        from compile import steps
    except ImportError as exc:
        raise SystemExit(f"this subcommand needs the toolchain: pip install -e '.[toolchain]' ({exc})") from None
    return steps


def _train_config(args: argparse.Namespace, **defaults):
    from compile.train import TrainConfig

    values = {**defaults}
    for field in ("epochs", "batch_size", "lr", "temperature", "alpha", "threads", "seed", "max_steps_per_epoch",
                  "class_balance"):
        value = getattr(args, field, None)
        if value is not None:
            values[field] = value
    if getattr(args, "augment", None):
        from compile.augment import PRESETS

        values["augment"] = PRESETS[args.augment]
    return TrainConfig(**values)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (one-cycle SGD)")
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps-per-epoch", dest="max_steps_per_epoch", type=int, help="for smoke runs")
    p.add_argument("--class-balance", dest="class_balance", type=float,
                   help="0..1: weight rare classes up by (count/mean)^-beta (raises UAR)")
    p.add_argument("--augment", choices=AUGMENT_PRESETS,
                   help="augmentation preset (compile/augment.py; default: the task's own)")


def _cmd_teacher(args: argparse.Namespace) -> int:
    steps = _toolchain()
    wrap = [tuple(w.rsplit(":", 1)) if ":" in w else (w, "fer") for w in args.wrap or []]
    desc = steps.make_teacher(args.data, args.out, votes=args.votes, wrap=wrap, train_arch=args.train,
                              weights=args.weights, cfg=_train_config(args, epochs=30, alpha=0.0), task=args.task)
    print(json.dumps(desc, indent=1))
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    steps = _toolchain()
    cfg = _train_config(args, epochs=30, alpha=0.5, temperature=3.0)
    print(json.dumps(steps.distill(args.data, args.out, arch=args.arch, soft_labels=args.teacher, cfg=cfg,
                                   task=args.task), indent=1))
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    steps = _toolchain()
    cfg = _train_config(args, epochs=10, lr=0.02, alpha=0.5, temperature=3.0)
    summary = steps.prune(args.data, args.model, args.out, ratio=args.ratio, soft_labels=args.teacher, cfg=cfg,
                          task=args.task)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_balance(args: argparse.Namespace) -> int:
    steps = _toolchain()
    summary = steps.balance(args.data, args.model, args.out, tau=args.tau, task=args.task)
    b, a = summary["val_before"], summary["val_after"]
    print(f"tau {summary['tau']:+.2f}, chosen by: {summary['chosen_by']}\n"
          f"validation accuracy {b['accuracy']:.4f} -> {a['accuracy']:.4f}, UAR {b['uar']:.4f} -> {a['uar']:.4f}\n"
          f"wrote {Path(args.out) / 'best.pt'}")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    steps = _toolchain()
    from compile.quantize import ParityBounds, ParityError

    provenance = json.loads(Path(args.provenance).read_text()) if args.provenance else None
    bounds = ParityBounds(max_accuracy_drop=args.max_drop, min_top1_agreement=args.min_agreement)
    try:
        result = steps.quantize(args.data, args.model, args.name, args.models_dir, test_split=args.split,
                                bounds=bounds, provenance=provenance, reports_dir=args.reports,
                                crop_margin=args.crop_margin, task=args.task)
    except ParityError as exc:
        print(json.dumps(getattr(exc, "report", {}), indent=1), file=sys.stderr)
        raise SystemExit(f"edgefer quantize: {exc}") from None
    from compile.evaluate import format_report

    print(json.dumps(result["parity"], indent=1))
    print(format_report(result["eval"]))
    print(f"shipped {result['model']} ({result['bytes']} bytes) with its sidecar")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from compile.evaluate import evaluate_model

    report = evaluate_model(args.model, args.data, args.split, args.out, backend=args.backend)
    from compile.evaluate import format_report

    print(format_report(report))
    print(f"wrote {Path(args.out) / 'eval.json'} and confusion.png")
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

    p = sub.add_parser("compile", help="build a model for a target: cpu | rpi | coral | jetson (see --list)")
    p.add_argument("--target", help="cpu, rpi, coral or jetson")
    p.add_argument("--model", default="fer-student", help="shipped model name or a .tflite path with its sidecar")
    p.add_argument("--out", help="folder for the artifacts and their sidecars")
    p.add_argument("--threads", type=int, help="cpu/rpi: XNNPACK threads written to the sidecar")
    p.add_argument("--edgetpu-compiler", dest="edgetpu_compiler", help="coral: the compiler (default: on PATH)")
    p.add_argument("--data", help="jetson: fer2013.csv(.gz) or image root, for calibration and parity")
    p.add_argument("--calib-count", dest="calib_count", type=int, help="jetson: calibration images (400)")
    p.add_argument("--split", help="jetson: test split for the parity check (PrivateTest)")
    p.add_argument("--min-agreement", dest="min_agreement", type=float,
                   help="jetson: int8 ONNX vs float ONNX top-1 agreement required (0.97, as for the TFLite)")
    p.add_argument("--max-drop", dest="max_drop", type=float,
                   help="jetson: float ONNX accuracy - int8 ONNX accuracy allowed, a fraction (0.005)")
    p.add_argument("--list", action="store_true", help="print the capability table and exit")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("bundle", help="one offline-installable archive for a board: wheels, models, config, unit")
    p.add_argument("--board", required=True, choices=["rpi", "jetson"])
    p.add_argument("--out", required=True, help="the archive to write (.tar.gz)")
    p.add_argument("--wheelhouse", help="folder of the board's wheels (missing ones are downloaded into it)")
    p.add_argument("--offline", action="store_true", help="never download: the wheelhouse must hold every wheel")
    p.add_argument("--models", help="an 'edgefer compile --out' folder (default rpi: compiled now; jetson: required)")
    p.add_argument("--project-wheel", dest="project_wheel", help="a prebuilt edgefer wheel (default: built here)")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("flash", help="put the rpi bundle and a first-boot installer on a fresh SD card's boot "
                                     "partition")
    p.add_argument("--bootfs", required=True, help="the mounted boot partition (has config.txt and cmdline.txt)")
    p.add_argument("--bundle", help="a bundle from 'edgefer bundle --board rpi' (default: build one)")
    p.add_argument("--wheelhouse", help="when building the bundle: as for 'edgefer bundle'")
    p.add_argument("--boot-path", dest="boot_path", default="/boot/firmware",
                   help="where the Pi mounts this partition (bookworm: /boot/firmware)")
    p.set_defaults(func=_cmd_flash)

    p = sub.add_parser("deploy", help="copy a bundle to a board over ssh and install it there")
    p.add_argument("--host", required=True, help="user@board (key-based ssh; sudo on the board)")
    p.add_argument("--board", default="rpi", choices=["rpi", "jetson"])
    p.add_argument("--bundle", help="the bundle (default: build one for --board)")
    p.add_argument("--wheelhouse")
    p.add_argument("--port", type=int)
    p.add_argument("--identity", help="ssh private key file")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="probe the board only")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser("bench-models", help="model-only latency per model at 1..N threads (no camera, no detector)")
    p.add_argument("models", nargs="*", help="shipped model names or .tflite/.onnx paths (default: fer-student)")
    p.add_argument("--threads", type=int, default=4, help="measure 1..N threads")
    p.add_argument("--runs", type=int, default=500, help="timed invokes per model and thread count")
    p.add_argument("--backend")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench_models)

    p = sub.add_parser("teacher", help="make the soft-label file a student is distilled from")
    p.add_argument("--data", required=True, help="fer2013.csv(.gz) or an image folder with train/ val/ test/")
    p.add_argument("--task", choices=["expression", "eye_state", "yawn"],
                   help="what the data trains (default: read from the data's format)")
    p.add_argument("--out", required=True, help="soft-label file to write (.npz)")
    p.add_argument("--votes", help="FER+ vote file fer2013new.csv (row-aligned with fer2013.csv)")
    p.add_argument("--wrap", action="append", help="MODEL[:CONVENTION] a .tflite/.onnx/.h5 teacher (convention: fer)")
    p.add_argument("--train", metavar="ARCH", help="train a torch teacher here first (e.g. 'teacher')")
    p.add_argument("--weights", type=float, nargs="+", help="weight per teacher: trained, votes, wrapped...")
    _add_train_args(p)
    p.set_defaults(func=_cmd_teacher)

    p = sub.add_parser("distill", help="train a student from a teacher's soft labels (or hard labels alone)")
    p.add_argument("--data", required=True)
    p.add_argument("--task", choices=["expression", "eye_state", "yawn"],
                   help="what the data trains (default: read from the data's format)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, best.pt)")
    p.add_argument("--arch", help="student architecture (default: the task's: student, eye-student, ...)")
    p.add_argument("--teacher", help="soft-label file from 'edgefer teacher'; omit for the no-teacher baseline")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float, help="weight of the soft loss")
    _add_train_args(p)
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("prune", help="structured channel pruning + fine-tuning")
    p.add_argument("--data", required=True)
    p.add_argument("--task", choices=["expression", "eye_state", "yawn"],
                   help="what the data trains (default: read from the data's format)")
    p.add_argument("--model", required=True, help="best.pt of a distill run")
    p.add_argument("--out", required=True)
    p.add_argument("--ratio", type=float, default=0.4, help="share of channels removed per layer")
    p.add_argument("--teacher", help="soft-label file, to fine-tune with distillation")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float)
    _add_train_args(p)
    p.set_defaults(func=_cmd_prune)

    p = sub.add_parser("balance", help="logit adjustment for class imbalance, folded into the classifier bias "
                                       "(raises UAR at no inference cost)")
    p.add_argument("--data", required=True)
    p.add_argument("--task", choices=["expression", "eye_state", "yawn"],
                   help="what the data trains (default: read from the data's format)")
    p.add_argument("--model", required=True, help="a .pt from distill or prune")
    p.add_argument("--out", required=True, help="run folder for the adjusted best.pt and summary.json")
    p.add_argument("--tau", type=float, help="strength (0 = unchanged); default: chosen on the validation split by "
                                             "the mean of accuracy and UAR")
    p.set_defaults(func=_cmd_balance)

    p = sub.add_parser("quantize", help="ONNX -> full-int8 TFLite, parity gate, ship to models/ with sidecar")
    p.add_argument("--data", required=True)
    p.add_argument("--task", choices=["expression", "eye_state", "yawn"],
                   help="what the data trains (default: read from the data's format)")
    p.add_argument("--model", required=True, help="a .pt from distill or prune")
    p.add_argument("--name", required=True, help="shipped model name (models/NAME.tflite)")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--reports", default="reports")
    p.add_argument("--split", help="test split for parity and metrics (default: the data's: PrivateTest, test)")
    p.add_argument("--max-drop", type=float, default=0.005, help="largest int8 accuracy drop allowed (fraction)")
    p.add_argument("--min-agreement", type=float, default=0.97, help="smallest int8 vs float top-1 agreement")
    p.add_argument("--crop-margin", type=float, default=0.09,
                   help="face-box crops: margin around the box that matches the training crops "
                        "(tools/measure_crop_margin.py); eye and mouth crops use their own geometry")
    p.add_argument("--provenance", help="JSON with 'teacher' and 'recipe' to record in the sidecar")
    p.set_defaults(func=_cmd_quantize)

    p = sub.add_parser("eval", help="accuracy, UAR, per-class P/R/F1, confusion matrix (JSON + PNG)")
    p.add_argument("model", help="shipped model name or .tflite/.onnx path")
    p.add_argument("data", help="fer2013.csv(.gz) or an image folder with test/")
    p.add_argument("--split", default="PrivateTest")
    p.add_argument("--out", default="reports/eval")
    p.add_argument("--backend")
    p.set_defaults(func=_cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ContractError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"edgefer {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
