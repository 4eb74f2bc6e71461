"""Raw int8 model outputs on fixed face crops, run the same way on x86 and inside the emulated arm64 root.

Why raw outputs: probabilities and JSON round figures; the int8 output tensor is what XNNPACK computes, so
equality of those bytes is the exact check that the board's kernels agree with the host's. Needs only numpy,
OpenCV and ai-edge-litert (the device set), so it runs inside the bundle's venv.

    python tools/arm64_outputs.py write-crops crops.npz
    python tools/arm64_outputs.py outputs crops.npz [--model PATH] > outputs.json
    python tools/arm64_outputs.py compare x86.json arm64.json [x86-analyze.json arm64-analyze.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def write_crops(path: Path) -> None:
    """Crops of the demo photo at several scales and offsets, plus noise: 48x48 grey uint8."""
    import cv2

    from edgefer.edge.samples import sample_image_path

    gray = cv2.imread(str(sample_image_path("grace_hopper")), cv2.IMREAD_GRAYSCALE)
    rng = np.random.default_rng(0)
    crops = []
    h, w = gray.shape
    for size in (120, 180, 240, 300):
        for _ in range(6):
            y, x = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
            crops.append(cv2.resize(gray[y:y + size, x:x + size], (48, 48), interpolation=cv2.INTER_AREA))
    crops += list(rng.integers(0, 256, (8, 48, 48), dtype=np.uint8))
    np.savez(path, crops=np.stack(crops).astype(np.uint8))


def outputs(crops_path: Path, model: str | None) -> dict:
    import platform

    from ai_edge_litert.interpreter import Interpreter

    if model is None:
        from edgefer.edge.models import resolve

        model = str(resolve("fer-student"))
    crops = np.load(crops_path)["crops"]
    interp = Interpreter(model_path=model, num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for crop in crops:
        x = (crop.astype(np.int16) - 128).astype(np.int8).reshape(inp["shape"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        rows.append(interp.get_tensor(out["index"]).reshape(-1).astype(int).tolist())
    return {"machine": platform.machine(), "model": Path(model).name, "outputs": rows}


def compare(x86: Path, arm: Path, analyze: list[Path]) -> int:
    a, b = json.loads(x86.read_text()), json.loads(arm.read_text())
    qa, qb = np.array(a["outputs"]), np.array(b["outputs"])
    diff = int(np.abs(qa - qb).max()) if qa.shape == qb.shape else -1
    ok = qa.shape == qb.shape and diff == 0
    print(f"raw int8 outputs, {len(qa)} crops x {qa.shape[1] if qa.ndim == 2 else '?'}: {a['machine']} vs "
          f"{b['machine']}: {'IDENTICAL' if ok else f'DIFFERENT (max {diff} LSB)'}")
    if analyze:
        ja, jb = (json.loads(p.read_text().strip().splitlines()[-1]) for p in analyze)
        same = ja["faces"] == jb["faces"]  # boxes, scores, expression, eyes_open and yawn, as printed
        print(f"edgefer analyze --json grace_hopper: {len(ja['faces'])} vs {len(jb['faces'])} face(s), boxes, "
              f"scores, expression, eyes_open and yawn {'IDENTICAL' if same else 'DIFFERENT'}")
        if not same:
            print(f"  x86:   {ja['faces']}\n  arm64: {jb['faces']}")
        ok = ok and same
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("write-crops")
    p.add_argument("path", type=Path)
    p = sub.add_parser("outputs")
    p.add_argument("crops", type=Path)
    p.add_argument("--model")
    p = sub.add_parser("compare")
    p.add_argument("x86", type=Path)
    p.add_argument("arm", type=Path)
    p.add_argument("analyze", type=Path, nargs="*")
    args = parser.parse_args()
    if args.cmd == "write-crops":
        write_crops(args.path)
        return 0
    if args.cmd == "outputs":
        print(json.dumps(outputs(args.crops, args.model)))
        return 0
    return compare(args.x86, args.arm, args.analyze)


if __name__ == "__main__":
    sys.exit(main())
