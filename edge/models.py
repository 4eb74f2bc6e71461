"""Finding shipped models and loading them with their contract."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefer.edge import backends
from edgefer.edge.contract import ContractError, ModelContract, load_contract

if TYPE_CHECKING:
    from edgefer.edge.signing import TrustPolicy

DEFAULT_EXPRESSION_MODEL = "fer-student"


def models_dir() -> Path:
    """Where the shipped models live: the installed ``edgefer.models`` package (``models/`` in a checkout)."""
    import edgefer.models

    return Path(edgefer.models.__file__).parent


def resolve(name_or_path: str | Path) -> Path:
    """A model file path from a path, or from a shipped model's name (``fer-student``)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".tflite", ".onnx"):
        if not candidate.is_file():
            raise ContractError(f"{candidate}: model file not found")
        return candidate
    shipped = models_dir() / f"{name_or_path}.tflite"
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in models_dir().glob("*.tflite"))
    raise ContractError(f"no model named {str(name_or_path)!r}; shipped: {', '.join(available) or 'none'}; "
                        "or pass a path to a .tflite/.onnx with its .json sidecar")


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """A model plus its contract: crops in, label probabilities out."""

    def __init__(self, name_or_path: str | Path, backend: str | None = None, threads: int | None = None,
                 trust: TrustPolicy | None = None) -> None:
        """``trust``: which signatures the model needs (default: the device's key at /etc/edgefer/trusted.pub if
        there is one, else none)."""
        from edgefer.edge.signing import TrustPolicy

        self.path = resolve(name_or_path)
        # The signature first: the sidecar is only read once it is known to be the one that was signed.
        (trust if trust is not None else TrustPolicy.from_config()).check_model(self.path)
        self.contract: ModelContract = load_contract(self.path)
        options = {"threads": threads or self.contract.threads or 1}
        self.backend = backends.for_model(self.path, self.contract, prefer=backend, **options)
        if self.contract.output.kind == "probabilities":  # else every downstream threshold reads garbage
            h, w = self.contract.input.height, self.contract.input.width
            probe = self.backend.infer(np.full((1, h, w), 128, np.uint8))[0]
            if not (np.isfinite(probe).all() and probe.min() >= -1e-3 and abs(float(probe.sum()) - 1.0) < 0.02):
                raise ContractError(f"{self.path}: the sidecar says the outputs are probabilities, but they are "
                                    f"not (they sum to {float(probe.sum()):.3g}): is output.kind right?")

    @property
    def labels(self) -> list[str]:
        return self.contract.labels

    @property
    def input_size(self) -> tuple[int, int]:
        return self.contract.input.width, self.contract.input.height

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops [N, H, W] already cut and resized per the contract -> probabilities [N, classes]."""
        out = self.backend.infer(crops)
        return out if self.contract.output.kind == "probabilities" else softmax(out)
