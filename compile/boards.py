"""The boards a bundle is built for (their Python, CPU platforms, extras, units and files) and the wheels each needs:
this checkout's own wheel, its requirements for the board, fetched with pip's --platform or checked in a brought
wheelhouse. ``compile/bundle.py`` puts them in the archive.
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class BundleError(ValueError):
    """The bundle cannot be built as asked."""


def _manylinux_aarch64(upto: int) -> tuple[str, ...]:
    # pip does not widen an explicit --platform to older glibc tags: list them all (ai-edge-litert is 2_27 only).
    return ("manylinux2014_aarch64",) + tuple(f"manylinux_2_{m}_aarch64" for m in range(17, upto + 1))


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    target: str
    python: str  # the board OS's python3, major.minor
    platforms: tuple[str, ...]
    extras: tuple[str, ...]
    exclude: tuple[str, ...]  # requirements the board OS provides instead (apt), never from the wheelhouse
    add: tuple[str, ...]
    units: tuple[str, ...]
    files: dict[str, str]  # bundle path -> board/ path
    groups: tuple[str, ...]


BOARDS: dict[str, Board] = {
    "rpi": Board(
        name="rpi", description="Raspberry Pi 4/5, Raspberry Pi OS bookworm 64-bit (Python 3.11, aarch64, glibc 2.36)",
        target="rpi", python="3.11", platforms=_manylinux_aarch64(36), extras=("demo",), exclude=(), add=(),
        units=("edgefer.service",), files={"config/config.yaml": "rpi/config.yaml",
                                           "systemd/edgefer.service": "rpi/edgefer.service",
                                           "systemd/journald-edgefer.conf": "rpi/journald-edgefer.conf",
                                           "coral/99-edgetpu-accelerator.rules": "coral/99-edgetpu-accelerator.rules",
                                           "coral/setup.sh": "coral/setup.sh",
                                           "coral/config.yaml": "coral/config.yaml"},
        groups=("video", "gpio", "dialout")),
    "jetson": Board(
        name="jetson", description="NVIDIA Jetson, JetPack 6 (Ubuntu 22.04, Python 3.10, aarch64, glibc 2.35)",
        target="jetson", python="3.10", platforms=_manylinux_aarch64(35), extras=(),
        exclude=("opencv-python-headless",),  # JetPack's python3-opencv has GStreamer (nvarguscamerasrc)
        add=("onnxruntime>=1.18,<2",), units=("edgefer.service", "edgefer-engine.service"),
        files={"config/config.yaml": "jetson/config.yaml", "systemd/edgefer.service": "jetson/edgefer.service",
               "systemd/edgefer-engine.service": "jetson/edgefer-engine.service",
               "systemd/journald-edgefer.conf": "rpi/journald-edgefer.conf"},
        groups=("video", "render", "dialout")),
}


def get_board(name: str) -> Board:
    if name not in BOARDS:
        raise BundleError(f"unknown board {name!r}; one of: {', '.join(BOARDS)}")
    return BOARDS[name]


def build_project_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps .`` of this checkout; checks that the runtime packages and detector models are in it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgefer-wheel-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp,
                               str(REPO)], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("edgefer-*.whl"))
        if proc.returncode or not wheels:
            raise BundleError(f"pip wheel of the project failed:\n{(proc.stdout + proc.stderr)[-1500:]}")
        wheel = dest / wheels[0].name
        shutil.copyfile(wheels[0], wheel)
    names = zipfile.ZipFile(wheel).namelist()
    needed = ["edgefer/edge/backends/litert.py", "edgefer/edge/sources/demo.py", "edgefer/edge/outputs/gpio.py",
              "edgefer/edge/detectors/blazeface.py",
              "edgefer/models/detectors/face_detection_short_range.tflite", "edgefer/models/fer-student.tflite"]
    missing = [n for n in needed if n not in names]
    if missing:
        raise BundleError(f"{wheel.name} lacks {', '.join(missing)}: check [tool.setuptools] packages/package-data")
    return wheel


def wheel_requirements(wheel: Path, extras: tuple[str, ...]) -> list[str]:
    """Requires-Dist of the wheel, with the markers of ``extras`` kept and the rest dropped."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    reqs = []
    for req in meta.get_all("Requires-Dist") or []:
        spec, _, marker = req.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra is None or extra.group(1) in extras:
            reqs.append(spec.strip())
    return reqs


def _req_name(req: str) -> str:
    return re.split(r"[\s<>=!~\[;(]", req, maxsplit=1)[0].lower().replace("_", "-")


def board_requirements(board: Board, wheel: Path) -> list[str]:
    reqs = [r for r in wheel_requirements(wheel, board.extras) if _req_name(r) not in board.exclude]
    return reqs + list(board.add)


def fetch_wheels(board: Board, requirements: list[str], wheelhouse: Path) -> None:
    """pip download the board's binary wheels into ``wheelhouse`` (host network; the board needs none)."""
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", board.python,
           "--implementation", "cp", "-d", str(wheelhouse)]
    for platform in board.platforms:
        cmd += ["--platform", platform]
    proc = subprocess.run(cmd + requirements, capture_output=True, text=True)
    if proc.returncode:
        raise BundleError(f"pip download for {board.name} failed (pass --wheelhouse DIR with the wheels to build "
                          f"offline):\n{(proc.stdout + proc.stderr)[-2000:]}")


def wheel_name(path: Path) -> str:
    return path.name.split("-")[0].lower().replace("_", "-")


def check_wheelhouse(board: Board, requirements: list[str], wheelhouse: Path, strict: bool = True) -> list[str]:
    """Names of top-level requirements with no wheel in ``wheelhouse``, and refuses wheels for another CPU."""
    wheels = list(wheelhouse.glob("*.whl"))
    foreign = [w.name for w in wheels if re.search(r"(x86_64|amd64|win32|macosx|armv7l|i686)", w.name)]
    if foreign:
        raise BundleError(f"{wheelhouse}: wheels for another platform: {', '.join(foreign[:5])}; the {board.name} "
                          "needs aarch64 (or pure-Python) wheels")
    py = "cp" + board.python.replace(".", "")
    wrong_py = [w.name for w in wheels if re.search(r"-cp3\d+-cp3\d+-", w.name) and f"-{py}-" not in w.name]
    if wrong_py:
        raise BundleError(f"{wheelhouse}: wheels for another Python: {', '.join(wrong_py[:5])}; the {board.name} "
                          f"runs Python {board.python} ({py})")
    have = {wheel_name(w) for w in wheels}
    missing = [r for r in requirements if _req_name(r) not in have]
    if missing and strict:
        raise BundleError(f"{wheelhouse}: no wheel for {', '.join(missing)} (drop --offline to download them)")
    return missing
