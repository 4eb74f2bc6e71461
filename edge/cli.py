"""``edgefer``: one console command; each subcommand is a thin wrapper over a plain function.

Device subcommands import only the device set (numpy, OpenCV, ai-edge-litert). Toolchain subcommands import
``compile`` (torch, onnx2tf, TensorFlow) lazily, so they fail with an install hint on a board, not at start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.contract import ContractError

#: Photos that a declared dependency ships, so the demo needs no camera and no download.
SAMPLE_IMAGES = {"grace_hopper": ("matplotlib", "grace_hopper.jpg")}


def sample_image_path(name: str) -> Path:
    package, file = SAMPLE_IMAGES[name]
    try:
        import matplotlib.cbook
    except ImportError:
        raise SystemExit(f"the sample image {name!r} comes with {package}: pip install {package}") from None
    return Path(matplotlib.cbook.get_sample_data(file, asfileobj=False))


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


def _cmd_teacher(args: argparse.Namespace) -> int:
    steps = _toolchain()
    wrap = [tuple(w.rsplit(":", 1)) if ":" in w else (w, "fer") for w in args.wrap or []]
    desc = steps.make_teacher(args.data, args.out, votes=args.votes, wrap=wrap, train_arch=args.train,
                              weights=args.weights, cfg=_train_config(args, epochs=30, alpha=0.0))
    print(json.dumps(desc, indent=1))
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    steps = _toolchain()
    cfg = _train_config(args, epochs=30, alpha=0.5, temperature=3.0)
    print(json.dumps(steps.distill(args.data, args.out, arch=args.arch, soft_labels=args.teacher, cfg=cfg), indent=1))
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    steps = _toolchain()
    cfg = _train_config(args, epochs=10, lr=0.02, alpha=0.5, temperature=3.0)
    summary = steps.prune(args.data, args.model, args.out, ratio=args.ratio, soft_labels=args.teacher, cfg=cfg)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    steps = _toolchain()
    from compile.quantize import ParityBounds, ParityError

    provenance = json.loads(Path(args.provenance).read_text()) if args.provenance else None
    bounds = ParityBounds(max_accuracy_drop=args.max_drop, min_top1_agreement=args.min_agreement)
    try:
        result = steps.quantize(args.data, args.model, args.name, args.models_dir, test_split=args.split,
                                bounds=bounds, provenance=provenance, reports_dir=args.reports,
                                crop_margin=args.crop_margin)
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

    p = sub.add_parser("teacher", help="make the soft-label file a student is distilled from")
    p.add_argument("--data", required=True, help="fer2013.csv(.gz) or an image folder with train/ val/ test/")
    p.add_argument("--out", required=True, help="soft-label file to write (.npz)")
    p.add_argument("--votes", help="FER+ vote file fer2013new.csv (row-aligned with fer2013.csv)")
    p.add_argument("--wrap", action="append", help="MODEL[:CONVENTION] a .tflite/.onnx/.h5 teacher (convention: fer)")
    p.add_argument("--train", metavar="ARCH", help="train a torch teacher here first (e.g. 'teacher')")
    p.add_argument("--weights", type=float, nargs="+", help="weight per teacher: trained, votes, wrapped...")
    _add_train_args(p)
    p.set_defaults(func=_cmd_teacher)

    p = sub.add_parser("distill", help="train a student from a teacher's soft labels (or hard labels alone)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, best.pt)")
    p.add_argument("--arch", default="student")
    p.add_argument("--teacher", help="soft-label file from 'edgefer teacher'; omit for the no-teacher baseline")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float, help="weight of the soft loss")
    _add_train_args(p)
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("prune", help="structured channel pruning + fine-tuning")
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True, help="best.pt of a distill run")
    p.add_argument("--out", required=True)
    p.add_argument("--ratio", type=float, default=0.4, help="share of channels removed per layer")
    p.add_argument("--teacher", help="soft-label file, to fine-tune with distillation")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float)
    _add_train_args(p)
    p.set_defaults(func=_cmd_prune)

    p = sub.add_parser("quantize", help="ONNX -> full-int8 TFLite, parity gate, ship to models/ with sidecar")
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True, help="a .pt from distill or prune")
    p.add_argument("--name", required=True, help="shipped model name (models/NAME.tflite)")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--reports", default="reports")
    p.add_argument("--split", default="PrivateTest", help="test split for parity and metrics")
    p.add_argument("--max-drop", type=float, default=0.005, help="largest int8 accuracy drop allowed (fraction)")
    p.add_argument("--min-agreement", type=float, default=0.97, help="smallest int8 vs float top-1 agreement")
    p.add_argument("--crop-margin", type=float, default=0.09,
                   help="margin around a Haar face box that matches the training crops (tools/measure_crop_margin.py)")
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
    except (ContractError, FileNotFoundError, ValueError) as exc:
        print(f"edgefer {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
