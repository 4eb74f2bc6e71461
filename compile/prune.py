"""Structured channel pruning with torch-pruning: whole filters go, so the int8 model really gets faster."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from edgefer.compile.nets import count_macs


def prune_channels(model: nn.Module, ratio: float, size: int = 48, round_to: int = 4) -> dict:
    """Remove ``ratio`` of the channels of every prunable conv by L2 filter magnitude, in place.

    The classifier and the attention gate's inner layers keep their widths. Returns MACs and parameters
    before and after.
    """
    if not 0 < ratio < 1:
        raise ValueError(f"pruning ratio must lie strictly between 0 and 1, got {ratio}")
    before_macs, before_params = count_macs(model, size)
    example = torch.zeros(1, 1, size, size)
    ignored = [m for name, m in model.named_modules() if name == "fc" or name.startswith("gate.")]
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model, example, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=ratio,
        ignored_layers=ignored, round_to=round_to,
    )
    pruner.step()
    after_macs, after_params = count_macs(model, size)
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    return {"ratio": ratio, "macs_before": before_macs, "macs_after": after_macs,
            "params_before": before_params, "params_after": after_params, "conv_widths": widths}
