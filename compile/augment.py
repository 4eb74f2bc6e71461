"""Batch augmentation for grey face crops, suited to a car cabin.

Works on a whole float batch of raw pixels (N,1,H,W in 0..255) with torch ops, so it costs little next to
the training step on a 2-core CPU. Cabin light swings hard (sun, tunnels, IR at night), the head turns and
tilts, and hands, sunglasses and the steering wheel hide part of the face.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    rotate_deg: float = Field(10.0, ge=0, le=45, description="max in-plane rotation, degrees")
    scale: float = Field(0.10, ge=0, le=0.5, description="max relative zoom in or out")
    shift: float = Field(0.08, ge=0, le=0.3, description="max shift as a fraction of the side")
    brightness: float = Field(40.0, ge=0, le=128, description="max brightness offset, pixel units")
    contrast: float = Field(0.35, ge=0, le=0.9, description="max relative contrast change")
    gamma: float = Field(0.4, ge=0, le=1, description="max |log2 gamma| (IR-like tone curves)")
    noise: float = Field(6.0, ge=0, le=40, description="max sensor noise std, pixel units")
    blur: float = Field(0.2, ge=0, le=1, description="probability of a 3x3 blur (focus, motion)")
    occlusion: float = Field(0.25, ge=0, le=1, description="probability of a random occluding box")


def _affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    u = lambda: torch.rand(n, generator=gen) * 2 - 1  # noqa: E731 - uniform in [-1, 1]
    angle = u() * math.radians(cfg.rotate_deg)
    scale = 1.0 + u() * cfg.scale
    tx, ty = u() * cfg.shift * 2, u() * cfg.shift * 2  # grid units span 2 per side
    flip = torch.where(torch.rand(n, generator=gen) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos * flip, -sin, tx], dim=1),
        torch.stack([sin * flip, cos, ty], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Return an augmented copy of ``x`` (raw pixels, float, N x 1 x H x W), clamped to 0..255."""
    n, _, h, w = x.shape
    x = _affine(x, cfg, gen)
    u = lambda: torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1  # noqa: E731

    gamma = torch.pow(2.0, u() * cfg.gamma)
    x = 255.0 * torch.pow((x / 255.0).clamp_min(1e-6), gamma)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * (1 + u() * cfg.contrast) + mean + u() * cfg.brightness

    if cfg.blur > 0:
        kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).div(16).view(1, 1, 3, 3)
        blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)
        pick = (torch.rand(n, 1, 1, 1, generator=gen) < cfg.blur).float()
        x = pick * blurred + (1 - pick) * x

    if cfg.noise > 0:
        sigma = torch.rand(n, 1, 1, 1, generator=gen) * cfg.noise
        x = x + torch.randn(x.shape, generator=gen) * sigma

    if cfg.occlusion > 0:
        bw = (torch.rand(n, generator=gen) * 0.3 + 0.2) * w
        bh = (torch.rand(n, generator=gen) * 0.3 + 0.2) * h
        x0 = torch.rand(n, generator=gen) * (w - bw)
        y0 = torch.rand(n, generator=gen) * (h - bh)
        cols = torch.arange(w).view(1, 1, w)
        rows = torch.arange(h).view(1, h, 1)
        inside = ((cols >= x0.view(n, 1, 1)) & (cols < (x0 + bw).view(n, 1, 1))
                  & (rows >= y0.view(n, 1, 1)) & (rows < (y0 + bh).view(n, 1, 1)))
        use = (torch.rand(n, generator=gen) < cfg.occlusion).view(n, 1, 1)
        fill = torch.rand(n, 1, 1, generator=gen) * 255
        x = torch.where((inside & use).unsqueeze(1), fill.unsqueeze(1), x)

    return x.clamp(0, 255)
