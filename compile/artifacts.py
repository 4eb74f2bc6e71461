"""What every per-target builder shares: its error type and how it writes a model with its sidecar.

It sits below ``compile/targets.py`` (the capability table) and the builders it dispatches to
(``compile/coral.py``, ``compile/jetson.py``), so the table imports the builders and nothing imports back.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgefer.edge.contract import ModelContract, sha256_of, sidecar_path, write_contract


class TargetError(ValueError):
    """An unknown target, or an option/model the target does not support."""


def write_artifact(src: Path, dest: Path, contract: ModelContract, **update: Any) -> Path:
    """Copy ``src`` to ``dest`` (unless it is already there) and write its sidecar with ``update`` applied."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    new = contract.model_copy(update={"file": dest.name, "sha256": sha256_of(dest), "bytes": dest.stat().st_size,
                                      **update})
    write_contract(ModelContract.model_validate(new.model_dump()), sidecar_path(dest))
    return dest
