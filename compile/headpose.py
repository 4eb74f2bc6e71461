"""The head-pose student: crops and labels (AFLW2000 train + FaceMesh pseudo-labels), augmentation, net, training.

Every crop is cut the way the runtime cuts it (``edgefer.edge.headpose.face_roi``: the BlazeFace box's long side x 1.5,
eye line level) but stored wider (``STORE_SCALE``) so augmentation can shift, scale and turn it without
inventing borders. Labels are the pose *in the crop*: the frame's pose turned back by the crop's eye-line
angle (the runtime composes it in again, ``edgefer.edge.headpose.uncrop_pose``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from edgefer.compile.nets import Normalize, conv_bn_relu
from edgefer.edge.detectors import Detection
from edgefer.edge.headpose import ROI_SCALE, FaceRoi, _rz, angles_from_matrix, face_roi, rotation_matrix

INPUT_SIZE = 64
#: Stored crops cover this much more than the model's crop, for augmentation.
STORE_MARGIN = 1.25
STORE_SIZE = round(INPUT_SIZE * STORE_MARGIN)  # 80: the model's crop is its centre 64 x 64
#: Angles are learned in units of this many degrees (an L1 loss on values near 1).
ANGLE_UNIT = 30.0


def crop_pose(frame_pose: tuple[float, float, float], crop_angle_deg: float) -> tuple[float, float, float]:
    """The frame's pose as seen in a crop turned by ``crop_angle_deg`` (inverse of ``uncrop_pose``)."""
    return angles_from_matrix(_rz(-math.radians(crop_angle_deg)) @ rotation_matrix(*frame_pose))


def stored_crop(gray: np.ndarray, det: Detection) -> tuple[np.ndarray, float]:
    """The wide crop [STORE_SIZE, STORE_SIZE] for ``det`` and its eye-line angle."""
    roi = face_roi(det)
    wide = FaceRoi(roi.centre, roi.side * STORE_MARGIN, roi.angle_deg)
    return wide.cut(gray, STORE_SIZE), roi.angle_deg


@dataclass
class PoseSet:
    crops: np.ndarray  # [N, STORE_SIZE, STORE_SIZE] uint8
    poses: np.ndarray  # [N, 3] yaw, pitch, roll in the crop, degrees
    source: np.ndarray  # [N] str: where each crop came from ("aflw:train", "pseudo:rafdb", ...)

    def __len__(self) -> int:
        return len(self.poses)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, crops=self.crops, poses=self.poses, source=self.source)

    @classmethod
    def load(cls, path: Path) -> PoseSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["crops"], z["poses"], z["source"])


def centre_crops(crops: np.ndarray) -> np.ndarray:
    """The runtime's crop (INPUT_SIZE) out of stored crops, no augmentation."""
    off = (STORE_SIZE - INPUT_SIZE) // 2
    return np.ascontiguousarray(crops[:, off:off + INPUT_SIZE, off:off + INPUT_SIZE])


def augment(crop: np.ndarray, pose: np.ndarray, rng: np.random.Generator, turn_deg: float = 15.0,
            scale: float = 0.1, shift: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """A randomly shifted, scaled, turned (about the optical axis: the label's roll follows), flipped (yaw and
    roll change sign), lit and blurred copy of one stored crop, at INPUT_SIZE."""
    turn = float(rng.uniform(-turn_deg, turn_deg))
    s = INPUT_SIZE / (STORE_SIZE / STORE_MARGIN) * float(rng.uniform(1 - scale, 1 + scale))
    centre = (STORE_SIZE / 2, STORE_SIZE / 2)
    m = cv2.getRotationMatrix2D(centre, turn, s)
    m[:, 2] += np.array([INPUT_SIZE / 2, INPUT_SIZE / 2]) - centre + rng.uniform(-shift, shift, 2) * INPUT_SIZE
    out = cv2.warpAffine(crop, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    label = np.asarray(crop_pose(tuple(pose), turn), np.float32) if turn else pose.astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
        label = label * np.array([-1.0, 1.0, -1.0], np.float32)
    img = out.astype(np.float32)
    img = (img - 128.0) * rng.uniform(0.6, 1.4) + 128.0 + rng.uniform(-40, 40)
    if rng.random() < 0.3:
        gamma = rng.uniform(0.6, 1.6)
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.3))
    img += rng.normal(0, rng.uniform(0, 6), img.shape)
    return np.clip(img, 0, 255).astype(np.float32), label


class PoseNet(nn.Module):
    """Plain 3x3 conv stages (strided, no pooling) down to 4x4, one 4x4 conv over the whole map (where the
    features are matters for pose, so no global average pooling), then a linear layer to three angles."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64), depth: int = 2, head: int = 128,
                 size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.norm = Normalize()
        layers: list[nn.Module] = []
        c_in = 1
        for width in widths:
            for i in range(depth):
                layers.append(conv_bn_relu(c_in, width, 2 if i == 0 else 1))
                c_in = width
        self.features = nn.Sequential(*layers)
        side = size // 2 ** len(widths)
        self.head = nn.Sequential(nn.Conv2d(c_in, head, side, bias=False), nn.BatchNorm2d(head), nn.ReLU(inplace=True))
        self.fc = nn.Linear(head, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.head(self.features(self.norm(x))), 1)) * ANGLE_UNIT


def predict(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(model(torch.from_numpy(images[i:i + batch_size].astype(np.float32))[:, None]).numpy())
    return np.concatenate(out) if out else np.zeros((0, 3), np.float32)


def train(model: nn.Module, data: PoseSet, weights: np.ndarray, val_images: np.ndarray,
          val_score, out_dir: Path, epochs: int, batch_size: int = 128, lr: float = 3e-3, steps_per_epoch: int = 100,
          seed: int = 0, log=print) -> dict:
    """AdamW + one-cycle, L1 on angles; samples drawn by ``weights``; checkpoints every epoch (resumes), keeps
    the best by ``val_score(predictions) -> float`` (lower is better)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt, best_path = out_dir / "last.pt", out_dir / "best.pt"
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    start, best, history = 0, math.inf, []
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, best, history = state["epoch"], state["best"], state["history"]
    p = weights / weights.sum()
    for epoch in range(start, epochs):
        rng = np.random.default_rng(seed * 1000 + epoch)
        model.train()
        t0, total = time.time(), 0.0
        for _ in range(steps_per_epoch):
            idx = rng.choice(len(data), size=batch_size, p=p)
            pairs = [augment(data.crops[i], data.poses[i], rng) for i in idx]
            x = torch.from_numpy(np.stack([a for a, _ in pairs]))[:, None]
            y = torch.from_numpy(np.stack([b for _, b in pairs]))
            loss = nn.functional.smooth_l1_loss(model(x) / ANGLE_UNIT, y / ANGLE_UNIT, beta=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        score = float(val_score(predict(model, val_images)))
        history.append({"epoch": epoch + 1, "loss": total / steps_per_epoch, "val": score, "s": time.time() - t0})
        if score < best:
            best = score
            torch.save(model, best_path)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch + 1, "best": best, "history": history}, ckpt)
        log(f"epoch {epoch + 1}/{epochs} loss {total / steps_per_epoch:.4f} val {score:.3f} best {best:.3f} "
            f"({time.time() - t0:.0f} s)")
    return {"best_val": best, "history": history}


__all__ = ["INPUT_SIZE", "ROI_SCALE", "PoseNet", "PoseSet", "augment", "centre_crops", "crop_pose", "predict",
           "stored_crop", "train"]
