"""Bundle assembly (with a fake wheelhouse: no network), flash onto a fake boot partition, and deploy's refusals
with a local stand-in for ssh."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from compile.bundle import BundleError, board_requirements, build_bundle, get_board, read_manifest
from compile.deploy import DeployError, check_bootfs, deploy, flash


def _fake_wheel(folder: Path, name: str, tag: str = "py3-none-any") -> None:
    (folder / f"{name}-1.0-{tag}.whl").write_bytes(b"not really a wheel")


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory) -> Path:
    from compile.bundle import build_project_wheel

    return build_project_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def rpi_bundle(tmp_path_factory, project_wheel) -> Path:
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    for req in board_requirements(get_board("rpi"), project_wheel):
        _fake_wheel(wheelhouse, req.split("<")[0].split(">")[0].split("=")[0].replace("-", "_"))
    out = tmp_path_factory.mktemp("bundle") / "edgefer-rpi.tar.gz"
    build_bundle("rpi", out, wheelhouse=wheelhouse, offline=True, project_wheel=project_wheel)
    return out


def test_project_wheel_holds_the_runtime_and_detectors(project_wheel):
    import zipfile

    names = zipfile.ZipFile(project_wheel).namelist()
    assert "edge/backends/edgetpu.py" in names and "edge/backends/tensorrt.py" in names
    assert "edgefer_models/detectors/face_detection_short_range.tflite" in names


def test_rpi_bundle_is_self_contained(rpi_bundle):
    manifest = read_manifest(rpi_bundle)
    assert manifest["board"] == "rpi" and manifest["python"] == "3.11" and manifest["target"] == "rpi"
    with tarfile.open(rpi_bundle) as tar:
        names = set(tar.getnames())
        install = tar.extractfile("edgefer-rpi/install.sh").read().decode()
        sidecar = json.load(tar.extractfile("edgefer-rpi/models/fer-student.json"))
    for part in ("install.sh", "SHA256SUMS", "config/config.yaml", "systemd/edgefer.service",
                 "systemd/journald-edgefer.conf", "models/fer-student.tflite", "coral/99-edgetpu-accelerator.rules"):
        assert f"edgefer-rpi/{part}" in names
    assert any(n.startswith("edgefer-rpi/wheelhouse/edgefer-") for n in names)
    assert sidecar["target"] == "rpi"
    assert "--no-index" in install and "aarch64" in install and "3.11" in install
    assert "video gpio dialout" in install


def test_bundle_refuses_missing_and_foreign_wheels(tmp_path, project_wheel):
    with pytest.raises(BundleError, match="no wheel for"):
        build_bundle("rpi", tmp_path / "b.tar.gz", wheelhouse=tmp_path, offline=True, project_wheel=project_wheel)
    _fake_wheel(tmp_path, "numpy", "cp311-cp311-manylinux_2_17_x86_64")
    with pytest.raises(BundleError, match="another platform"):
        build_bundle("rpi", tmp_path / "b.tar.gz", wheelhouse=tmp_path, offline=True, project_wheel=project_wheel)
    with pytest.raises(BundleError, match="unknown board"):
        build_bundle("pc", tmp_path / "b.tar.gz")


def test_jetson_bundle_needs_compiled_models(tmp_path, project_wheel):
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    for req in board_requirements(get_board("jetson"), project_wheel):
        _fake_wheel(wheelhouse, req.split("<")[0].split(">")[0].split("=")[0].replace("-", "_"))
    assert "opencv-python-headless" not in " ".join(board_requirements(get_board("jetson"), project_wheel))
    with pytest.raises(BundleError, match="edgefer compile --target jetson"):
        build_bundle("jetson", tmp_path / "j.tar.gz", wheelhouse=wheelhouse, offline=True, project_wheel=project_wheel)


def _bootfs(root: Path, kernels: tuple[str, ...] = ("kernel8.img", "kernel_2712.img")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.txt").write_text("[all]\narm_64bit=1\n")
    (root / "cmdline.txt").write_text("console=serial0,115200 root=PARTUUID=abcd-02 rootwait\n")
    for k in kernels:
        (root / k).write_bytes(b"")
    return root


def test_flash_refuses_a_folder_that_is_not_a_boot_partition(tmp_path, rpi_bundle):
    with pytest.raises(DeployError, match="not a Raspberry Pi boot partition"):
        flash(tmp_path, bundle=rpi_bundle)
    with pytest.raises(DeployError, match="not a folder"):
        flash(tmp_path / "nope", bundle=rpi_bundle)


def test_flash_refuses_32_bit_and_too_little_space(tmp_path, rpi_bundle):
    with pytest.raises(DeployError, match="32-bit"):
        flash(_bootfs(tmp_path / "b32", kernels=("kernel7l.img",)), bundle=rpi_bundle)
    with pytest.raises(DeployError, match="MB free"):
        check_bootfs(_bootfs(tmp_path / "small"), need_bytes=10**15)


def test_flash_writes_bundle_and_first_boot_installer(tmp_path, rpi_bundle):
    boot = _bootfs(tmp_path / "bootfs")
    result = flash(boot, bundle=rpi_bundle)
    assert (boot / "edgefer" / rpi_bundle.name).stat().st_size == rpi_bundle.stat().st_size
    firstboot = (boot / "edgefer" / "firstboot.sh").read_text()
    assert "install.sh" in firstboot and "sed -i" in firstboot
    cmdline = (boot / "cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and "systemd.run=/boot/firmware/edgefer/firstboot.sh" in cmdline
    assert "rootwait" in result["cmdline"]
    flash(boot, bundle=rpi_bundle)  # again: idempotent, one entry
    assert (boot / "cmdline.txt").read_text().count("systemd.run=") == 1


class FakeRunner:
    """Answers the probe like a board would; records what deploy copies and runs."""

    def __init__(self, arch: str = "aarch64", python: str = "3.11", free_kb: int = 10_000_000) -> None:
        self.host = "pi@car"
        self.answer = f"{arch}\n{python}\n/dev/root 30000000 1000 {free_kb} 1% /\n"
        self.commands: list[str] = []
        self.copied: list[tuple[Path, str]] = []

    def run(self, command: str) -> subprocess.CompletedProcess:
        self.commands.append(command)
        return subprocess.CompletedProcess(command, 0, self.answer if "uname" in command else "installed", "")

    def copy(self, local: Path, remote: str) -> subprocess.CompletedProcess:
        self.copied.append((local, remote))
        return subprocess.CompletedProcess("scp", 0, "", "")


@pytest.mark.parametrize(("runner", "message"), [
    (FakeRunner(arch="x86_64"), "is x86_64"),
    (FakeRunner(arch="armv7l"), "is armv7l"),
    (FakeRunner(python="3.13"), "Python 3.13"),
    (FakeRunner(free_kb=1000), "MB free"),
])
def test_deploy_refuses_the_wrong_board(runner, message, rpi_bundle):
    with pytest.raises(DeployError, match=message):
        deploy(runner, bundle=rpi_bundle)
    assert runner.copied == []


def test_deploy_refuses_wrong_arch_before_building(tmp_path):
    with pytest.raises(DeployError, match="is x86_64"):
        deploy(FakeRunner(arch="x86_64"))


def test_deploy_copies_and_installs(rpi_bundle):
    runner = FakeRunner()
    result = deploy(runner, bundle=rpi_bundle)
    assert result["installed"] and runner.copied[0][1] == f"/var/tmp/{rpi_bundle.name}"
    assert "sudo -n sh edgefer-rpi/install.sh" in runner.commands[-1]
    dry = FakeRunner()
    assert not deploy(dry, bundle=rpi_bundle, dry_run=True)["installed"] and dry.copied == []
