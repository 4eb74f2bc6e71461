from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from fixtures import write_fer2013, write_ferplus  # noqa: E402

# Fuzz tests (tests/test_fuzz_*.py): the same examples on every run and host (derandomize: examples come from a
# fixed seed per test, not from the clock; no example database, so a run never depends on an earlier one), no
# per-example deadline (a busy 2-core CI box is slow, and timing must never decide a verdict), and a bounded
# number of examples so the whole fuzz set stays within about a minute.
settings.register_profile("edgefer", derandomize=True, deadline=None, database=None, max_examples=40,
                          print_blob=False)
settings.load_profile("edgefer")


@pytest.fixture(scope="session")
def fer_files(tmp_path_factory) -> dict[str, Path]:
    """A small fer2013.csv.gz + row-aligned fer2013new.csv."""
    root = tmp_path_factory.mktemp("fer")
    csv_path = root / "fer2013.csv.gz"
    labels = write_fer2013(csv_path, {"Training": 700, "PublicTest": 140, "PrivateTest": 140}, gz=True)
    votes = root / "fer2013new.csv"
    write_ferplus(votes, labels)
    return {"csv": csv_path, "votes": votes, "root": root}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(scope="session")
def eye_folder(tmp_path_factory) -> Path:
    """A small CEW-like eye-patch folder (160 faces, 320 patches)."""
    from fixtures import write_eye_folder

    root = tmp_path_factory.mktemp("eyes")
    write_eye_folder(root, 160)
    return root


@pytest.fixture(scope="session")
def yawn_folder(tmp_path_factory) -> Path:
    """A small YawDD-like folder (40 session groups, 80 frames of a real face with the mouth open or closed)."""
    from fixtures import write_yawn_folder

    root = tmp_path_factory.mktemp("yawn")
    write_yawn_folder(root, 40)
    return root
