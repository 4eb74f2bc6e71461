"""Real face photos that a declared dependency ships, so the demo needs no camera and no download."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: name -> (package, file inside the package). matplotlib comes with the `demo` extra.
SAMPLE_IMAGES = {"grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")}


def sample_image_path(name: str) -> Path:
    """The photo's path, found without importing its package (matplotlib costs ~40 MB of RSS to import)."""
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"no sample image {name!r}; available: {', '.join(SAMPLE_IMAGES)}")
    package, file = SAMPLE_IMAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the sample photo {name!r} comes with {package}: pip install {package} "
                                "(or pip install 'edgefer[demo]')")
    path = Path(next(iter(spec.submodule_search_locations))) / file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {package} is installed but lacks its sample photo {name!r}")
    return path
