"""``edgefer bundle --board rpi|jetson --out FILE``: one self-contained archive that installs with no network.

Why: a car rarely has a network, and a board installed from PyPI on the day differs from the one tested. The
archive holds a wheelhouse for the board's Python and CPU (aarch64 manylinux wheels, fetched on this host with
pip's --platform/--python-version, or supplied with --wheelhouse), the project's own wheel, the models compiled
for the board's target with their sidecars, the config, the systemd unit(s), a SHA256SUMS file and an install
script that only ever runs ``pip install --no-index``.

Signed (``--sign KEY``, an ed25519 key from ``edgefer keygen``): every model gets ``NAME.tflite.sig`` over its
bytes and its sidecar's, the public key goes in as ``trusted.pub`` (install.sh puts it in /etc/edgefer on the
first install, and from then on the device takes only models and bundles that key signed), ``SHA256SUMS.sig``
signs the list of every file's sha256, and ``BUNDLE.tar.gz.sig`` beside the archive signs the archive's bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from edgefer.compile.boards import (
    REPO,
    Board,
    BundleError,
    board_requirements,
    build_project_wheel,
    check_wheelhouse,
    fetch_wheels,
    get_board,
    wheel_name,
)

BOARD_DIR = REPO / "board"


#: The shipped models a board bundle compiles when no --models folder is given.
SHIPPED_MODELS = ("fer-student", "eye-state", "yawn", "head-pose")


def sign_models(folder: Path, private_key) -> list[str]:
    """``NAME.sig`` beside every model in ``folder`` that has a sidecar; the signed model files' names."""
    from edgefer.edge.signing import sign_model

    signed = []
    for sidecar in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(sidecar.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(raw, dict) and "sha256" in raw and isinstance(raw.get("file"), str):
            sign_model(folder / raw["file"], private_key)
            signed.append(raw["file"])
    if not signed:
        raise BundleError(f"{folder}: no model with a sidecar to sign")
    return signed


def board_models(board: Board, models: Path | None, work: Path) -> Path:
    """The models compiled for the board's target: ``models`` (a compile --out folder) or compiled here."""
    from edgefer.compile.targets import compile_target

    out = work / "models"
    if models is not None:
        models = Path(models)
        if not models.is_dir():
            raise BundleError(f"{models}: not a folder (give the --out folder of edgefer compile)")
        shutil.copytree(models, out)
    elif board.target in ("rpi", "cpu", "coral"):
        # Every shipped task model, so the board config can name them all under /opt/edgefer/models, where the
        # bundle's signatures lie beside them (the wheel's own copies are not signed).
        from edgefer.edge.models import models_dir

        for name in SHIPPED_MODELS if board.target in ("rpi", "cpu") else SHIPPED_MODELS[:1]:
            if (models_dir() / f"{name}.tflite").is_file():
                compile_target(board.target, out, model=name)
    else:
        raise BundleError(f"the {board.name} bundle needs models compiled for target {board.target} (calibration "
                          f"data is needed): edgefer compile --target {board.target} --data fer2013.csv.gz --out "
                          "DIR, then edgefer bundle --board jetson --models DIR")
    sidecars = [json.loads(p.read_text()) for p in out.glob("*.json")]
    targets = {s.get("target") for s in sidecars if isinstance(s, dict) and "sha256" in s and "target" in s}
    if not targets or targets - {board.target, "coral"}:
        raise BundleError(f"{out}: models for target(s) {sorted(t for t in targets if t)}; the {board.name} bundle "
                          f"takes target {board.target}")
    return out


INSTALL = r"""#!/bin/sh
# Install edgefer from this bundle on a {description}.
# No network is used: pip installs only from ./wheelhouse (--no-index). Run as root: sh install.sh [--no-systemd]
# [--prefix /opt/edgefer] [--coral]. Re-running upgrades in place and keeps an edited /etc/edgefer/config.yaml.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/edgefer
SYSTEMD=1
CORAL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=$2; shift 2 ;;
        --no-systemd) SYSTEMD=0; shift ;;
        --coral) CORAL=1; shift ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
say() {{ echo "edgefer install: $*"; }}
die() {{ echo "edgefer install: $*" >&2; exit 1; }}
[ "$(id -u)" = 0 ] || die "run as root (sudo sh install.sh)"
ARCH=$(uname -m)
[ "$ARCH" = aarch64 ] || die "this bundle is for aarch64 ({board}); this machine is $ARCH"
PY=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || die "python3 is missing"
[ "$PY" = "{python}" ] || die "the wheelhouse is for Python {python}; this machine has $PY"
python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3-venv is missing (apt install python3-venv)"
cd "$HERE"
sha256sum -c --quiet SHA256SUMS || die "bundle corrupt: SHA256SUMS does not match (copy it again)"
# A device that holds a trusted key takes only bundles that key signed. The check that a tampered bundle cannot
# skip runs before this script, with the installed edgefer (edgefer deploy does it); this one catches mistakes.
KEY=/etc/edgefer/trusted.pub
if [ -f "$KEY" ]; then
    [ -f SHA256SUMS.sig ] && [ -f trusted.pub ] || \
        die "unsigned bundle: this device only installs bundles signed by its key $KEY (edgefer bundle --sign KEY)"
    cmp -s trusted.pub "$KEY" || \
        die "this bundle is signed by another key than the device's $KEY (a new key means a new install)"
    if [ -x "$PREFIX/venv/bin/edgefer" ]; then
        "$PREFIX/venv/bin/edgefer" verify --key "$KEY" "$HERE" || die "bundle signature check failed (see above)"
    fi
fi

for g in {groups}; do getent group "$g" >/dev/null || groupadd --system "$g"; done
if ! id edgefer >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/edgefer --create-home --shell /usr/sbin/nologin edgefer
fi
usermod -aG "$(echo {groups} | tr ' ' ',')" edgefer
[ "$CORAL" = 1 ] && {{ getent group plugdev >/dev/null || groupadd --system plugdev; usermod -aG plugdev edgefer; }}

say "venv in $PREFIX/venv (with system site packages: picamera2, gpiozero, lgpio{system_note} come from apt)"
mkdir -p "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --no-index --find-links "$HERE/wheelhouse" --disable-pip-version-check \
    --no-cache-dir --upgrade {pip_args}
rm -rf "$PREFIX/models.new" && cp -r "$HERE/models" "$PREFIX/models.new"
[ -d "$PREFIX/models" ] && for e in "$PREFIX"/models/*.engine "$PREFIX"/models/*.engine.json; do
    [ -f "$e" ] && cp "$e" "$PREFIX/models.new/"; done
rm -rf "$PREFIX/models" && mv "$PREFIX/models.new" "$PREFIX/models"
cp "$HERE/README.txt" "$HERE/MANIFEST.json" "$PREFIX/"
mkdir -p /etc/edgefer
if [ -f trusted.pub ] && [ ! -f "$KEY" ]; then
    install -m 0644 trusted.pub "$KEY"
    say "trusted key installed as $KEY: from now on models and updates must be signed by it"
fi
if [ -f /etc/edgefer/config.yaml ] && ! cmp -s /etc/edgefer/config.yaml "$HERE/config/config.yaml"; then
    cp "$HERE/config/config.yaml" /etc/edgefer/config.yaml.new
    say "kept your /etc/edgefer/config.yaml; the bundle's is /etc/edgefer/config.yaml.new"
else
    cp "$HERE/config/config.yaml" /etc/edgefer/config.yaml
fi
"$PREFIX/venv/bin/edgefer" config --check /etc/edgefer/config.yaml
if [ "$CORAL" = 1 ] && [ -d "$HERE/coral" ]; then
    install -m 0644 "$HERE/coral/99-edgetpu-accelerator.rules" /etc/udev/rules.d/99-edgetpu-accelerator.rules
    cp "$HERE/coral/config.yaml" /etc/edgefer/config-coral.yaml
    say "Coral udev rule installed; libedgetpu1-std comes from Coral's apt repository (coral/setup.sh, online once)"
fi
for unit in {units}; do install -m 0644 "$HERE/systemd/$unit" "/etc/systemd/system/$unit"; done
mkdir -p /etc/systemd/journald.conf.d
install -m 0644 "$HERE/systemd/journald-edgefer.conf" /etc/systemd/journald.conf.d/edgefer.conf
if [ "$SYSTEMD" = 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl restart systemd-journald || true
    systemctl enable {units}
    systemctl restart edgefer.service
    say "edgefer.service enabled and started: journalctl -u edgefer -f"
else
    say "systemd not running (or --no-systemd): units installed, enable later with: systemctl enable --now edgefer"
fi
say "done: $("$PREFIX/venv/bin/python" -c 'import importlib.metadata as m; print("edgefer", m.version("edgefer"))')"
"""

README = """edgefer bundle for {description}
built {built} by edgefer {version}

  sudo sh install.sh            # offline: venv in /opt/edgefer, models, /etc/edgefer/config.yaml, systemd unit
  sudo sh install.sh --coral    # also the Coral USB Accelerator udev rule (rpi)
  journalctl -u edgefer -f      # the monitor's log
  /opt/edgefer/venv/bin/edgefer run --config /etc/edgefer/config.yaml --source demo --max-frames 100   # no camera

Contents: wheelhouse/ (Python {python} aarch64 wheels + the edgefer wheel), models/ (target {target}, each with
its .json contract), config/, systemd/, SHA256SUMS, MANIFEST.json. Signed (edgefer bundle --sign): also
trusted.pub, SHA256SUMS.sig and models/*.sig; check with: edgefer verify --key trusted.pub THIS-FOLDER-OR-ARCHIVE
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def build_bundle(board_name: str, out: str | Path, wheelhouse: str | Path | None = None, offline: bool = False,
                 models: str | Path | None = None, project_wheel: str | Path | None = None,
                 sign_key: str | Path | None = None) -> dict[str, Any]:
    """Assemble the archive (``.tar.gz``). ``wheelhouse``: wheels to use (missing ones are downloaded into it
    unless ``offline``); ``models``: an ``edgefer compile --out`` folder; ``project_wheel``: a prebuilt edgefer
    wheel (default: built from this checkout); ``sign_key``: an ed25519 private key (``edgefer keygen``)."""
    from importlib.metadata import version

    from edgefer.edge.signing import SignatureError, key_id, load_private_key, public_pem, sign_file, signature_path

    board = get_board(board_name)
    out = Path(out)
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise BundleError(f"{out}: the bundle is a .tar.gz")
    missing_files = [src for src in board.files.values() if not (BOARD_DIR / src).is_file()]
    if missing_files:
        raise BundleError(f"board files missing under {BOARD_DIR}: {', '.join(missing_files)} (bundle from a checkout)")
    try:  # before minutes of work: a wrong or unreadable key fails now
        private_key = load_private_key(sign_key) if sign_key is not None else None
    except SignatureError as exc:
        raise BundleError(f"--sign: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="edgefer-bundle-") as tmp:
        top = Path(tmp) / f"edgefer-{board.name}"
        wh = top / "wheelhouse"
        wh.mkdir(parents=True)
        wheel = Path(project_wheel) if project_wheel else build_project_wheel(Path(tmp) / "project")
        requirements = board_requirements(board, wheel)
        source = Path(wheelhouse) if wheelhouse else Path(tmp) / "download"
        source.mkdir(parents=True, exist_ok=True)
        if check_wheelhouse(board, requirements, source, strict=offline):
            fetch_wheels(board, requirements, source)
            check_wheelhouse(board, requirements, source, strict=True)
        for w in source.glob("*.whl"):
            if wheel_name(w) != "edgefer":
                shutil.copyfile(w, wh / w.name)
        shutil.copyfile(wheel, wh / wheel.name)
        board_models(board, Path(models) if models else None, top)
        signed_by = None
        if private_key is not None:
            sign_models(top / "models", private_key)
            (top / "trusted.pub").write_bytes(public_pem(private_key.public_key()))
            signed_by = key_id(private_key.public_key())
        for dest, src in board.files.items():
            (top / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(BOARD_DIR / src, top / dest)
        extras = f"[{','.join(board.extras)}]" if board.extras else ""
        edgefer_req = f"'edgefer{extras}=={wheel.name.split('-')[1]}'"
        if board.exclude:  # install edgefer without the requirements the OS provides, then the rest
            pip_args = f"--no-deps {edgefer_req} && \"$PREFIX/venv/bin/python\" -m pip install --no-index " \
                       f"--find-links \"$HERE/wheelhouse\" --no-cache-dir " + " ".join(f"'{r}'" for r in requirements)
        else:
            pip_args = edgefer_req
        system_note = ", OpenCV with GStreamer" if "opencv-python-headless" in board.exclude else ""
        (top / "install.sh").write_text(INSTALL.format(
            description=board.description, board=board.name, python=board.python, groups=" ".join(board.groups),
            units=" ".join(board.units), pip_args=pip_args, system_note=system_note))
        (top / "install.sh").chmod(0o755)
        built = __import__("datetime").date.today().isoformat()
        (top / "README.txt").write_text(README.format(description=board.description, built=built,
                                                      version=version("edgefer"), python=board.python,
                                                      target=board.target))
        manifest = {"board": board.name, "description": board.description, "target": board.target,
                    "python": board.python, "platforms": list(board.platforms), "requirements": requirements,
                    "wheels": sorted(p.name for p in wh.glob("*.whl")), "built": built,
                    "models": sorted(p.name for p in (top / "models").iterdir()), "signed_by": signed_by}
        (top / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
        files = sorted(p for p in top.rglob("*") if p.is_file())
        sums = "".join(f"{_sha256(p)}  {p.relative_to(top)}\n" for p in files)
        (top / "SHA256SUMS").write_text(sums)
        if private_key is not None:
            sign_file(top / "SHA256SUMS", private_key)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:
            tar.add(top, arcname=top.name)
    detached = signature_path(out)
    if private_key is not None:
        sign_file(out, private_key)
    elif detached.exists():  # a stale signature of an earlier archive would only mislead
        detached.unlink()
    return {"bundle": str(out), "bytes": out.stat().st_size, **manifest,
            "signature": str(detached) if private_key is not None else None}


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """MANIFEST.json from a bundle archive, or BundleError when it is not one."""
    bundle = Path(bundle)
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.name.count("/") == 1
                           and m.name.endswith("/MANIFEST.json")), None)
            if member is None:
                raise BundleError(f"{bundle}: not an edgefer bundle (no MANIFEST.json)")
            return json.load(io.TextIOWrapper(tar.extractfile(member)))  # type: ignore[arg-type]
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{bundle}: not a readable bundle ({exc})") from None
