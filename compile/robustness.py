"""Robustness of a classifier to the shifts it will meet outside its training photos.

Each perturbation is a fixed, seeded transform of uint8 grey crops (N,H,W): tone curves, contrast, blur,
noise, resolution loss, crop jitter and a near-infrared-like rendering. Accuracy on perturbed copies of the
held-out test set shows whether a model reads the object (an eyelid) or the photo's intensity statistics: CEW's
open and closed eyes come from different photo sources, so a net keyed on brightness would lose most of its
accuracy on the 'equalised' and 'standardised' copies.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def _tone(images: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.clip(np.rint(fn(images.astype(np.float32))), 0, 255).astype(np.uint8)


def _contrast(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def run(images: np.ndarray) -> np.ndarray:
        mean = images.reshape(len(images), -1).mean(1)[:, None, None]
        return _tone(images, lambda x: (x - mean) * factor + mean)
    return run


def _gamma(g: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda images: _tone(images, lambda x: 255.0 * (x / 255.0) ** g)


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    scale = lambda im: sigma * im.shape[1] / 24.0  # noqa: E731
    return lambda images: np.stack([cv2.GaussianBlur(im, (0, 0), scale(im), borderType=cv2.BORDER_REPLICATE)
                                    for im in images])


def _noise(std: float, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    def run(images: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return _tone(images, lambda x: x + rng.normal(0, std, x.shape))
    return run


def _downscale(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def one(im: np.ndarray) -> np.ndarray:
        h, w = im.shape
        small = cv2.resize(im, (max(2, round(w * factor)), max(2, round(h * factor))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return lambda images: np.stack([one(im) for im in images])


def _affine(zoom: float = 1.0, dx: float = 0.0, dy: float = 0.0, angle: float = 0.0) -> Callable:
    """zoom > 1 magnifies (a tighter crop); dx, dy in pixels of a 24-px side."""
    def one(im: np.ndarray) -> np.ndarray:
        h, w = im.shape
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, zoom)
        m[:, 2] += (dx * w / 24.0, dy * h / 24.0)
        return cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return lambda images: np.stack([one(im) for im in images])


def _yaw(degrees: float) -> Callable:
    """A yaw-like perspective warp (compile/augment.py yaw_homography), borders replicated."""
    from edgefer.compile.augment import yaw_homography

    def one(im: np.ndarray) -> np.ndarray:
        h, w = im.shape
        return cv2.warpPerspective(im, yaw_homography(degrees, w), (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
    return lambda images: np.stack([one(im) for im in images])


def _low_light(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """A dim cabin: a quarter of the light, a gamma lift as an auto-exposure would apply, and the sensor noise
    that the gain brings (std 8 after the lift)."""
    rng = np.random.default_rng(seed)
    x = 255.0 * ((images.astype(np.float32) * 0.25) / 255.0) ** 0.6
    return np.clip(np.rint(x + rng.normal(0, 8, x.shape)), 0, 255).astype(np.uint8)


def _equalise(images: np.ndarray) -> np.ndarray:
    return np.stack([cv2.equalizeHist(im) for im in images])


def _standardise(images: np.ndarray) -> np.ndarray:
    """Every crop to mean 128, std 40: removes the global intensity statistics entirely."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    mean, std = flat.mean(1)[:, None, None], flat.std(1)[:, None, None].clip(1)
    return _tone(images, lambda x: (x - mean) / std * 40 + 128)


def _nir_like(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """A night-time NIR rendering: flat contrast, lifted blacks (grey irises), soft focus, sensor noise and
    one specular glint."""
    rng = np.random.default_rng(seed)
    x = images.astype(np.float32)
    mean = x.reshape(len(x), -1).mean(1)[:, None, None]
    x = (x - mean) * 0.55 + mean
    x = 60 + x * (1 - 60 / 255.0)
    x = np.stack([cv2.GaussianBlur(im, (0, 0), 0.7 * im.shape[1] / 24.0) for im in x])
    n, h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    sigma = 1.0 * w / 24.0
    x += 180 * np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / (2 * sigma**2))
    x += rng.normal(0, 6, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


#: name -> transform of uint8 crops [N,H,W]. 'original' first.
PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda images: images,
    "flip": lambda images: images[:, :, ::-1].copy(),
    "gamma_0.5": _gamma(0.5),
    "gamma_2.0": _gamma(2.0),
    "contrast_0.5": _contrast(0.5),
    "brighter_+50": lambda images: _tone(images, lambda x: x + 50),
    "darker_-50": lambda images: _tone(images, lambda x: x - 50),
    "equalised": _equalise,
    "standardised": _standardise,
    "blur_sigma_1": _blur(1.0),
    "noise_std_10": _noise(10.0),
    "downscale_0.5": _downscale(0.5),
    "zoom_in_15%": _affine(zoom=1.15),
    "zoom_out_15%": _affine(zoom=1 / 1.15),
    "shift_2px": _affine(dx=2.0, dy=-2.0),
    "rotate_10deg": _affine(angle=10.0),
    "nir_like": _nir_like,
    "yaw_30deg": _yaw(30.0),
    "yaw_45deg": _yaw(45.0),
    "yaw_-45deg": _yaw(-45.0),
    "low_light": _low_light,
}


def robustness_report(test, predictors: dict[str, Callable[[np.ndarray], np.ndarray]],
                      perturbations: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None) -> dict:
    """Accuracy per perturbation and predictor (name -> function images -> logits) on ``test`` (a FaceSet).

    Per-face accuracy is added when the set has groups (several patches per face)."""
    from edgefer.compile.evaluate import grouped_accuracy

    out: dict = {}
    for name, transform in (perturbations or PERTURBATIONS).items():
        images = transform(test.images)
        row: dict = {}
        for pred_name, predict in predictors.items():
            logits = predict(images)
            if len(test.groups):
                g = grouped_accuracy(test, logits)
                row[pred_name] = {"patch": g["per_patch"]["accuracy"], "face": g["per_face"]["accuracy"]}
            else:
                row[pred_name] = {"patch": float((logits.argmax(1) == test.targets).mean())}
        out[name] = row
    return out


def intensity_baseline(train, test, bins: int = 16, steps: int = 2000, seed: int = 0) -> dict:
    """How far the photo source's intensity statistics alone go: a logistic regression on each crop's mean,
    std, percentiles and grey histogram (no spatial information). Its test accuracy is the share a net could
    get without looking at the eye at all."""
    import torch

    def features(images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1).astype(np.float32)
        hist = np.stack([np.histogram(f, bins=bins, range=(0, 256))[0] for f in flat]) / flat.shape[1]
        pct = np.percentile(flat, [5, 25, 50, 75, 95], axis=1).T / 255.0
        return np.concatenate([flat.mean(1, keepdims=True) / 255.0, flat.std(1, keepdims=True) / 255.0, pct,
                               hist], axis=1).astype(np.float32)

    torch.manual_seed(seed)
    xtr, xte = torch.from_numpy(features(train.images)), torch.from_numpy(features(test.images))
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ytr = torch.from_numpy(train.targets)
    model = torch.nn.Linear(xtr.shape[1], len(train.labels))
    opt = torch.optim.LBFGS(model.parameters(), max_iter=steps)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xtr), ytr) + 1e-3 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        acc = lambda x, y: float((model(x).argmax(1).numpy() == y).mean())  # noqa: E731
        return {"features": f"mean, std, 5 percentiles, {bins}-bin histogram", "model": "logistic regression",
                "train_accuracy": acc(xtr, train.targets), "test_accuracy": acc(xte, test.targets)}


def against_the_grain(test, logits: np.ndarray, share: float = 0.25) -> dict:
    """Accuracy on the patches whose mean brightness points to the other class: per class, the ``share`` of
    its patches whose mean lies closest to (or beyond) the other class's mean. A net keyed on brightness
    fails here; one that reads the eye does not."""
    means = test.images.reshape(len(test), -1).mean(1)
    pred = logits.argmax(1)
    out = {}
    class_means = [means[test.targets == c].mean() for c in range(len(test.labels))]
    for c, name in enumerate(test.labels):
        idx = np.flatnonzero(test.targets == c)
        if idx.size == 0 or len(test.labels) != 2:
            continue
        # signed distance past this class's own mean toward the other class's mean: largest first
        direction = np.sign(class_means[1 - c] - class_means[c])
        toward = (means[idx] - class_means[c]) * direction
        pick = idx[np.argsort(-toward)[: max(1, int(round(share * idx.size)))]]
        out[name] = {"n": int(pick.size), "mean_brightness": float(means[pick].mean()),
                     "class_mean_brightness": float(class_means[c]), "accuracy": float((pred[pick] == c).mean())}
    return out
