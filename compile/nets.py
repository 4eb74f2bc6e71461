"""Network definitions: the tiny students and the CPU-trainable teachers (expression at 48x48, eye state at
24x24, yawn at 32x32; the input size is not part of a net: global average pooling makes every one size-agnostic, and the
data set decides the size the model is trained, exported and shipped at).

Every net takes raw grey pixels 0..255 in NCHW and normalises inside the graph (Mul+Add), so the int8 TFLite
input is the raw pixel and the device never has to know the training statistics. The normalisation is not
folded into the first conv: zero padding in normalised space is not zero padding in raw space.
"""

from __future__ import annotations

import torch
from torch import nn

#: FER2013 Training pixel statistics (0..255), measured by compile/data.py on the full split.
PIXEL_MEAN = 129.5
PIXEL_STD = 65.0


class Normalize(nn.Module):
    def __init__(self, mean: float = PIXEL_MEAN, std: float = PIXEL_STD) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(1.0 / std))
        self.register_buffer("shift", torch.tensor(-mean / std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ChannelGate(nn.Module):
    """Squeeze-excitation style channel attention: the 'light attention' of PAtt-Lite, at almost no cost."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(4, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(w))))


class PlainNet(nn.Module):
    """A stack of 3x3 conv stages, downsampling by strided conv (no pooling layers), then GAP and one linear.

    ``widths[i]`` channels in stage i; the first conv of every stage after the stem has stride 2, ``depth``
    convs per stage. Plain 3x3 convs are what XNNPACK's int8 kernels run fastest per MAC on ARM and x86.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), depth: int = 2, num_classes: int = 7,
                 stem_stride: int = 1, attention: bool = False, dropout: float = 0.2) -> None:
        super().__init__()
        self.norm = Normalize()
        layers: list[nn.Module] = []
        c_in = 1
        for stage, width in enumerate(widths):
            stride = stem_stride if stage == 0 else 2
            for i in range(depth):
                layers.append(conv_bn_relu(c_in, width, stride if i == 0 else 1))
                c_in = width
        self.features = nn.Sequential(*layers)
        self.gate = ChannelGate(c_in) if attention else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gate(self.features(self.norm(x)))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


#: Named architectures. A recipe picks one by name; the sidecar's recipe steps record the name.
ARCHITECTURES: dict[str, dict] = {
    # The accuracy-first student: 29.5 M MACs before pruning.
    "student": {"widths": (16, 32, 64, 128), "depth": 2, "stem_stride": 1, "attention": False},
    "student-att": {"widths": (16, 32, 64, 128), "depth": 2, "stem_stride": 1, "attention": True},
    # Same widths, but the stem conv has stride 2, so every stage runs at a quarter of the pixels: ~7.4 M MACs.
    # On an AVX2 CPU the 48x48 stage dominates int8 latency; this is the speed-first student.
    "student-s2": {"widths": (16, 32, 64, 128), "depth": 2, "stem_stride": 2, "attention": False},
    # student-s2 at 1.5x / 2x the channels: on an AVX-512 VNNI host the int8 convs at 24x24 and below cost far less
    # per MAC than the 48x48 stage, so width is the cheaper way to spend a latency budget there.
    "student-s2w": {"widths": (24, 48, 96, 192), "depth": 2, "stem_stride": 2, "attention": False},
    "student-s2x": {"widths": (32, 64, 128, 256), "depth": 2, "stem_stride": 2, "attention": False},
    # student-s2w at half the channels: the very shape pruning student-s2w by 50 % leaves (4.17 M MACs). Right after
    # that cut the net read 0.12 validation accuracy, so its fine-tune is a retraining; this trains the shape itself.
    "student-s2h": {"widths": (12, 24, 48, 96), "depth": 2, "stem_stride": 2, "attention": False},
    "student-tiny": {"widths": (8, 16, 32, 64), "depth": 2, "stem_stride": 1, "attention": False},
    # The teacher: 2x the channels, 3 convs per stage: 2.0 M params, 202 M MACs (nets.count_macs).
    "teacher": {"widths": (32, 64, 128, 256), "depth": 3, "stem_stride": 1, "attention": True, "dropout": 0.4},
    # For tests: trains in seconds.
    "micro": {"widths": (8, 16), "depth": 1, "stem_stride": 2, "attention": False},
    # Eye state on 24x24 patches: full resolution in the first stage (an eyelid is 1-3 px thick there),
    # three stages 24 -> 12 -> 6. ~5.3 M MACs and 71 K params before pruning.
    "eye-student": {"widths": (16, 32, 64), "depth": 2, "stem_stride": 1, "attention": False},
    # Its teacher: 2x the channels, 3 convs per stage, channel attention: ~31 M MACs.
    "eye-teacher": {"widths": (32, 64, 128), "depth": 3, "stem_stride": 1, "attention": True, "dropout": 0.3},
    # Yawn on 32x32 mouth crops: an open mouth is a large dark shape; the data set is small (about 740 training
    # frames from 86 driver sessions), so the student stays small: three stages 32 -> 16 -> 8, ~9.6 M MACs and
    # 72 K params before pruning (5.4 M / 41 K after 25 %). Chosen on val groups over widths 8-16-32 (which
    # pruning cuts to 4 channels in the first stage: val 0.92 mean of the last 5 epochs, 0.91 under
    # perturbations) and 12-24-48 (0.91 / 0.92); this one: 0.94 / 0.94 after pruning.
    "yawn-student": {"widths": (16, 32, 64), "depth": 2, "stem_stride": 1, "attention": False, "dropout": 0.3},
    # Its teacher: 2x the channels, channel attention, heavier dropout: ~38 M MACs at 32x32.
    "yawn-teacher": {"widths": (32, 64, 128), "depth": 2, "stem_stride": 1, "attention": True, "dropout": 0.5},
}

#: Default student / teacher per task (the recipe may name any other).
TASK_ARCHS: dict[str, dict[str, str]] = {
    "expression": {"student": "student", "teacher": "teacher"},
    "eye_state": {"student": "eye-student", "teacher": "eye-teacher"},
    "yawn": {"student": "yawn-student", "teacher": "yawn-teacher"},
}


def build(name: str, num_classes: int = 7) -> PlainNet:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return PlainNet(num_classes=num_classes, **ARCHITECTURES[name])


def count_macs(model: nn.Module, size: int = 48) -> tuple[int, int]:
    """(MACs, parameters) for one 1x1xSIZExSIZE input, counting conv and linear layers."""
    macs = 0

    def conv_hook(mod: nn.Conv2d, _inp, out) -> None:
        nonlocal macs
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        macs += int(out.numel() // out.shape[0]) * k

    def linear_hook(mod: nn.Linear, _inp, out) -> None:
        nonlocal macs
        macs += mod.in_features * mod.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    params = sum(p.numel() for p in model.parameters())
    return macs, params
