"""Head-pose accuracy and per-face latency on AFLW2000 (faces within +-99 degrees), on the runtime's path.

Each image goes through BlazeFace like a camera frame; the detection holding the labelled face is cropped and
the estimator runs on it (one thread). Prints the mean absolute error per angle, their mean, the error by |yaw|
band, the per-face latency (the estimator only: crop + model + fit, not the detector) and the machine with its
int8 features. Faces the detector misses are counted and scored apart, with a box from the labelled landmarks.

    python tools/headpose_eval.py ../shared/data/headpose/aflw2000 [--split val] [--estimator head-pose|facemesh]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from edgefer.compile.data.aflw2000 import labelled_face, read_aflw, read_gray
from edgefer.edge import detectors, headpose
from edgefer.edge.bench import governor_warning, machine_line
from edgefer.edge.detectors import Detection

BANDS = ((0.0, 30.0), (30.0, 60.0), (60.0, 99.0))


def landmark_detection(landmarks: np.ndarray) -> Detection:
    """A detector-like box (and eye keypoints) from the 68 labelled landmarks, for faces the detector missed."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    eyes = {"right_eye": tuple(landmarks[36:42].mean(axis=0)), "left_eye": tuple(landmarks[42:48].mean(axis=0))}
    return Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), 1.0,
                     {k: (float(x), float(y)) for k, (x, y) in eyes.items()})


def errors_summary(errors: np.ndarray, truth: np.ndarray) -> dict:
    """Mean absolute errors [n, 3] (yaw, pitch, roll) overall and by |yaw| band."""
    if not len(errors):
        return {"n": 0}
    mae = errors.mean(axis=0)
    out = {"n": int(len(errors)), "yaw": round(float(mae[0]), 2), "pitch": round(float(mae[1]), 2),
           "roll": round(float(mae[2]), 2), "mean": round(float(mae.mean()), 2), "bands": {}}
    for lo, hi in BANDS:
        inside = (np.abs(truth[:, 0]) >= lo) & (np.abs(truth[:, 0]) < hi if hi < 99 else np.abs(truth[:, 0]) <= hi)
        if inside.any():
            out["bands"][f"{lo:.0f}-{hi:.0f}"] = {"n": int(inside.sum()),
                                                  "mean": round(float(errors[inside].mean()), 2)}
    return out


def evaluate(data: str, split: str | None, estimator: str, backend: str | None = None) -> dict:
    samples = read_aflw(data, split)
    detector = detectors.create({"type": "blazeface"})
    pose = headpose.create(estimator, backend=backend, threads=1)
    assert pose is not None
    found_err, found_truth, missed_err, missed_truth, times = [], [], [], [], []
    for s in samples:
        gray = read_gray(s.file)
        det = labelled_face(detector, gray, s.landmarks)
        missed = det is None
        if missed:
            det = landmark_detection(s.landmarks)
        t0 = time.perf_counter()
        estimate = pose.estimate(gray, det)
        elapsed = (time.perf_counter() - t0) * 1000.0
        error = np.abs(np.subtract(estimate, s.pose))
        if missed:
            missed_err.append(error)
            missed_truth.append(s.pose)
        else:
            found_err.append(error)
            found_truth.append(s.pose)
            times.append(elapsed)
    ms = np.asarray(times)
    result = {
        "data": data, "split": split or "all", "estimator": pose.describe(), "faces": len(samples),
        "detected": errors_summary(np.reshape(found_err, (-1, 3)), np.reshape(found_truth, (-1, 3))),
        "missed_by_detector": errors_summary(np.reshape(missed_err, (-1, 3)), np.reshape(missed_truth, (-1, 3))),
        "latency_ms": {"median": round(float(np.median(ms)), 3), "p90": round(float(np.percentile(ms, 90)), 3),
                       "threads": 1} if len(ms) else None,
        "machine": machine_line(),
    }
    warning = governor_warning()
    if warning:
        result["warning"] = warning
    return result


def print_table(r: dict) -> None:
    print(f"{r['estimator']} on {r['data']} ({r['split']}; {r['faces']} faces within +-99 degrees)")
    print(f"machine: {r['machine']}")
    for key, what in (("detected", "found by BlazeFace (the runtime's path)"),
                      ("missed_by_detector", "missed by BlazeFace (boxed from the labelled landmarks)")):
        s = r[key]
        if not s["n"]:
            print(f"{what}: none")
            continue
        bands = ", ".join(f"|yaw| {band}: {v['mean']:.2f} (n={v['n']})" for band, v in s["bands"].items())
        print(f"{what}: n={s['n']}  MAE yaw {s['yaw']:.2f}  pitch {s['pitch']:.2f}  roll {s['roll']:.2f}  "
              f"mean {s['mean']:.2f} deg;  by band: {bands}")
    if r["latency_ms"]:
        lat = r["latency_ms"]
        print(f"per face (crop + estimate, 1 thread): median {lat['median']:.3f} ms, p90 {lat['p90']:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="AFLW2000 folder (pose.csv, images/)")
    ap.add_argument("--split", default="val", help="train, val, or all")
    ap.add_argument("--estimator", default="head-pose",
                    help="a head-pose model name or path, or facemesh[:PATH to face_landmark.tflite]")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = evaluate(args.data, None if args.split == "all" else args.split, args.estimator, args.backend)
    print(json.dumps(result, indent=2)) if args.json else print_table(result)


if __name__ == "__main__":
    main()
