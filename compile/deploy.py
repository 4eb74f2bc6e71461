"""``edgefer flash`` and ``edgefer deploy``: get a bundle onto a board, refusing clearly when the target is wrong.

Why the checks come first: writing to the wrong partition, or installing aarch64 wheels on a 32-bit OS or the
wrong Python, fails late and confusingly on a board in a car. ``flash`` checks that the folder is a Raspberry Pi
boot partition (config.txt, cmdline.txt), that the image is 64-bit and that the bundle fits, then writes the
bundle and a first-boot installer that runs once through the kernel command line (``systemd.run=``, the same
mechanism Raspberry Pi Imager uses for its firstrun.sh) and removes itself. ``deploy`` probes the board over ssh
(architecture, Python, free space) before copying anything. The ssh side goes through a small runner object, so
the probe and its refusals are tested with a local fake.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Protocol

from edgefer.compile.boards import BundleError, get_board
from edgefer.compile.bundle import build_bundle, read_manifest

#: what the installer needs beyond the archive on the board (an unpacked copy plus the venv), as a multiple
UNPACKED_FACTOR = 4
MARGIN_BYTES = 4 * 1024 * 1024


class DeployError(RuntimeError):
    """The destination is not what the bundle is for, or the copy/install failed."""


def _bundle_for(board: str, bundle: str | Path | None, wheelhouse: str | Path | None, work: Path,
                sign_key: str | Path | None = None) -> Path:
    if bundle is not None:
        if sign_key is not None:
            raise DeployError("--sign signs a bundle built now; a given --bundle was signed (or not) when it was "
                              "built: edgefer bundle --sign KEY")
        path = Path(bundle)
        if not path.is_file():
            raise DeployError(f"{path}: bundle not found")
        return path
    out = work / f"edgefer-{board}.tar.gz"
    build_bundle(board, out, wheelhouse=wheelhouse, sign_key=sign_key)
    return out


# --- flash ------------------------------------------------------------------------------------------------------

FIRSTBOOT = r"""#!/bin/sh
# edgefer first-boot installer, written by `edgefer flash`. Runs once, offline, as root via systemd.run= on the
# kernel command line; installs the bundle beside it, removes its cmdline entries, then the Pi reboots.
HERE=$(cd "$(dirname "$0")" && pwd)
LOG=$HERE/firstboot.log
exec >"$LOG" 2>&1
set -x
CMDLINE={boot_path}/cmdline.txt
RUN="systemd.run={boot_path}/edgefer/firstboot.sh systemd.run_success_action=reboot"
sed -i "s| $RUN systemd.unit=kernel-command-line.target||" "$CMDLINE"
mkdir -p /var/lib/edgefer/bundle
tar -xzf "$HERE/{bundle}" -C /var/lib/edgefer/bundle
sh /var/lib/edgefer/bundle/{top}/install.sh --no-systemd && status=ok || status=failed
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/edgefer.service /etc/systemd/system/multi-user.target.wants/edgefer.service
echo "edgefer first boot: $status"
exit 0
"""
CMDLINE_ADD = " systemd.run={boot_path}/edgefer/firstboot.sh systemd.run_success_action=reboot " \
              "systemd.unit=kernel-command-line.target"


def check_bootfs(bootfs: Path, need_bytes: int) -> dict[str, Any]:
    """A Raspberry Pi boot partition with a 64-bit OS and room for ``need_bytes``, or DeployError saying why not."""
    if not bootfs.is_dir():
        raise DeployError(f"{bootfs}: not a folder; give the mounted boot partition of the SD card")
    missing = [f for f in ("config.txt", "cmdline.txt") if not (bootfs / f).is_file()]
    if missing:
        raise DeployError(f"{bootfs}: not a Raspberry Pi boot partition (no {' or '.join(missing)}); the boot "
                          "partition is the small FAT one, usually mounted as 'bootfs'")
    config = (bootfs / "config.txt").read_text(errors="replace")
    if re.search(r"^\s*arm_64bit\s*=\s*0", config, flags=re.M):
        raise DeployError(f"{bootfs}/config.txt sets arm_64bit=0: this bundle needs 64-bit Raspberry Pi OS (aarch64)")
    kernels = sorted(p.name for p in bootfs.glob("kernel*.img"))
    if kernels and not any(k in ("kernel8.img", "kernel_2712.img") for k in kernels):
        raise DeployError(f"{bootfs}: only 32-bit kernels ({', '.join(kernels)}): flash Raspberry Pi OS (64-bit)")
    cmdline = (bootfs / "cmdline.txt").read_text(errors="replace")
    if "\n" in cmdline.strip():
        raise DeployError(f"{bootfs}/cmdline.txt has more than one line; the Pi reads only the first")
    free = shutil.disk_usage(bootfs).free
    if free < need_bytes:
        raise DeployError(f"{bootfs}: {free / 1e6:.1f} MB free, the bundle and installer need {need_bytes / 1e6:.1f} "
                          "MB")
    return {"free_bytes": free, "kernels": kernels, "cmdline": cmdline.strip()}


def flash(bootfs: str | Path, bundle: str | Path | None = None, boot_path: str = "/boot/firmware",
          wheelhouse: str | Path | None = None, sign_key: str | Path | None = None) -> dict[str, Any]:
    bootfs = Path(bootfs)
    if not bootfs.is_dir():
        raise DeployError(f"{bootfs}: not a folder; give the mounted boot partition of the SD card")
    with tempfile.TemporaryDirectory(prefix="edgefer-flash-") as tmp:
        path = _bundle_for("rpi", bundle, wheelhouse, Path(tmp), sign_key)
        manifest = read_manifest(path)
        if manifest.get("board") != "rpi":
            raise DeployError(f"{path}: a bundle for {manifest.get('board')!r}; flash writes Raspberry Pi SD cards "
                              "(use edgefer deploy for a Jetson)")
        info = check_bootfs(bootfs, path.stat().st_size + MARGIN_BYTES)
        cmdline = info["cmdline"]
        add = CMDLINE_ADD.format(boot_path=boot_path)
        if "systemd.run=" in cmdline and add.strip() not in cmdline:
            other = cmdline.split("systemd.run=")[1].split()[0]
            raise DeployError(f"{bootfs}/cmdline.txt already runs a first-boot script ({other}): "
                              "boot the card once first (or remove Raspberry Pi Imager's customisation), then flash")
        dest = bootfs / "edgefer"
        dest.mkdir(exist_ok=True)
        shutil.copyfile(path, dest / path.name)
        top = f"edgefer-{manifest['board']}"
        (dest / "firstboot.sh").write_text(FIRSTBOOT.format(boot_path=boot_path, bundle=path.name, top=top))
        if add.strip() not in cmdline:
            (bootfs / "cmdline.txt").write_text(cmdline + add + "\n")
    return {"bootfs": str(bootfs), "bundle": str(dest / path.name), "bytes": (dest / path.name).stat().st_size,
            "firstboot": str(dest / "firstboot.sh"), "cmdline": (bootfs / "cmdline.txt").read_text().strip(),
            "next": "eject the card, boot the Pi: it installs offline, reboots, and edgefer.service starts"}


# --- deploy -----------------------------------------------------------------------------------------------------


class Runner(Protocol):
    host: str

    def run(self, command: str) -> subprocess.CompletedProcess: ...

    def copy(self, local: Path, remote: str) -> subprocess.CompletedProcess: ...


class SshRunner:
    """ssh/scp with BatchMode (key auth only: a deploy must not hang on a password prompt)."""

    def __init__(self, host: str, port: int | None = None, identity: str | None = None, timeout: int = 900) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9._:-]+|[A-Za-z0-9._:-]+", host):
            raise DeployError(f"--host {host!r}: expected user@board")
        self.host = host
        self.timeout = timeout
        self.opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if identity:
            self.opts += ["-i", identity]
        self.port = port

    def run(self, command: str) -> subprocess.CompletedProcess:
        cmd = ["ssh", *self.opts, *(["-p", str(self.port)] if self.port else []), self.host, command]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)

    def copy(self, local: Path, remote: str) -> subprocess.CompletedProcess:
        cmd = ["scp", *self.opts, *(["-P", str(self.port)] if self.port else []), str(local), f"{self.host}:{remote}"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)


PROBE = "uname -m; python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' || echo none; " \
        "df -Pk /var/tmp | tail -1"


#: Run on the board before anything of the new bundle is unpacked: a board that holds a trusted key checks the
#: bundle with the edgefer already installed there (its code, its key), so a tampered bundle never runs.
VERIFY = "{{ [ ! -f /etc/edgefer/trusted.pub ] || " \
         "/opt/edgefer/venv/bin/edgefer verify --key /etc/edgefer/trusted.pub {bundle}; }}"


def probe(runner: Runner) -> dict[str, Any]:
    proc = runner.run(PROBE)
    if proc.returncode != 0:
        raise DeployError(f"{runner.host}: ssh probe failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if len(lines) < 3:
        raise DeployError(f"{runner.host}: unexpected probe output {proc.stdout!r}")
    fields = lines[2].split()
    free = int(fields[3]) * 1024 if len(fields) >= 4 and fields[3].isdigit() else 0
    return {"arch": lines[0], "python": lines[1], "free_bytes": free}


def check_board(facts: dict[str, Any], manifest: dict[str, Any], need_bytes: int, host: str) -> None:
    if facts["arch"] != "aarch64":
        raise DeployError(f"{host} is {facts['arch']}, the {manifest['board']} bundle is for aarch64 (64-bit OS) only")
    if facts["python"] != manifest["python"]:
        raise DeployError(f"{host} has Python {facts['python']}, the bundle's wheels are for Python "
                          f"{manifest['python']} ({manifest['description']})")
    if facts["free_bytes"] < need_bytes:
        raise DeployError(f"{host}: {facts['free_bytes'] / 1e6:.0f} MB free in /var/tmp, the install needs about "
                          f"{need_bytes / 1e6:.0f} MB")


def deploy(runner: Runner, board: str = "rpi", bundle: str | Path | None = None,
           wheelhouse: str | Path | None = None, dry_run: bool = False,
           sign_key: str | Path | None = None) -> dict[str, Any]:
    get_board(board)
    facts = probe(runner)
    with tempfile.TemporaryDirectory(prefix="edgefer-deploy-") as tmp:
        if bundle is None and facts["arch"] != "aarch64":  # refuse before spending minutes on a bundle
            raise DeployError(f"{runner.host} is {facts['arch']}, the {board} bundle is for aarch64 (64-bit OS) only")
        path = _bundle_for(board, bundle, wheelhouse, Path(tmp), sign_key)
        try:
            manifest = read_manifest(path)
        except BundleError as exc:
            raise DeployError(str(exc)) from None
        if manifest.get("board") != board:
            raise DeployError(f"{path} is a {manifest.get('board')} bundle, not {board}")
        need = path.stat().st_size * UNPACKED_FACTOR
        check_board(facts, manifest, need, runner.host)
        result = {"host": runner.host, **facts, "bundle": str(path), "installed": False}
        if dry_run:
            return result
        remote = f"/var/tmp/{path.name}"
        copied = runner.copy(path, remote)
        if copied.returncode:
            raise DeployError(f"copy to {runner.host} failed: {copied.stderr.strip()[-300:]}")
        top = f"edgefer-{manifest['board']}"
        install = (f"cd /var/tmp && {VERIFY.format(bundle=shlex.quote(path.name))} && rm -rf {top} && tar -xzf "
                   f"{shlex.quote(path.name)} && sudo -n sh {top}/install.sh && rm -rf {top} {shlex.quote(path.name)}")
        proc = runner.run(install)
        refused = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgefer verify:")]
        if proc.returncode and refused:
            raise DeployError(f"{runner.host} refused the bundle: {refused[-1].removeprefix('edgefer verify: ')}")
        if proc.returncode:
            raise DeployError(f"install on {runner.host} failed (exit {proc.returncode}; passwordless sudo needed):\n"
                              f"{(proc.stdout + proc.stderr)[-1500:]}")
        result.update(installed=True, log=proc.stdout[-1000:])
        return result
