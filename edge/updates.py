"""What a device accepts as an update: a bundle whose every file is listed in a SHA256SUMS that the trusted key
signed.

A bundle (``edgefer bundle --sign KEY``) carries ``SHA256SUMS`` (sha256 of every file in it), ``SHA256SUMS.sig``
and ``trusted.pub``; beside the archive lies a detached ``BUNDLE.tar.gz.sig`` over the archive's bytes. The
device checks the inner signature, which travels inside the archive (``edgefer flash`` and ``deploy`` copy only
the archive), plus the detached one when it is there. Checked without unpacking: every member a plain file or
folder under one top folder, no links, no ``..``, no duplicate names, every file listed with its sha256 and
nothing unlisted, so neither a changed file nor an added one (an extra install hook) gets through.

This runs on the device with the code and key already installed there, before anything of the new bundle runs:
``deploy`` calls ``/opt/edgefer/venv/bin/edgefer verify`` on the board. The check inside the bundle's own
install.sh catches honest mistakes (an unsigned or foreign bundle) but could be edited by whoever made the bundle.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from edgefer.edge.signing import SignatureError, check_digest, key_id, signature_path, verified_payload, verify_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SUMS = "SHA256SUMS"
#: SHA256SUMS and its signature are read into memory; anything bigger is not one of ours.
SMALL_FILE_LIMIT = 1 << 20
SUMS_SIG = "SHA256SUMS.sig"
#: Files of the bundle that SHA256SUMS cannot list: itself and its signature.
UNLISTED = (SUMS, SUMS_SIG)


def _parse_sums(text: str, where: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            raise SignatureError(f"{where}:{number}: expected '<sha256>  <path>', got {line[:80]!r}")
        sums[name] = digest
    return sums


def _compare(files: dict[str, str], sums: dict[str, str], where: str) -> None:
    changed = sorted(n for n in files if n in sums and files[n] != sums[n])
    if changed:
        raise SignatureError(f"{where}: {', '.join(changed[:5])}: changed after the bundle was signed (sha256 "
                             f"differs from the signed {SUMS}): tampered or corrupt")
    unlisted = sorted(n for n in files if n not in sums and n not in UNLISTED)
    if unlisted:
        raise SignatureError(f"{where}: {', '.join(unlisted[:5])}: not in the signed {SUMS}: added after signing")
    missing = sorted(n for n in sums if n not in files)
    if missing:
        raise SignatureError(f"{where}: {', '.join(missing[:5])}: listed in the signed {SUMS} but missing")


def _check_sums(sums_bytes: bytes | None, sig_bytes: bytes | None, where: str,
                public_key: Ed25519PublicKey) -> dict[str, str]:
    if sums_bytes is None:
        raise SignatureError(f"{where}: not an edgefer bundle (no {SUMS})")
    if sig_bytes is None:
        raise SignatureError(f"{where}: unsigned bundle (no {SUMS_SIG}); this device only installs bundles signed "
                             f"by key {key_id(public_key)}: build it with edgefer bundle --sign KEY")
    payload = verified_payload(sig_bytes, f"{where}: {SUMS_SIG}", public_key, where)
    if payload.get("kind") != "file" or payload.get("file") != SUMS:
        raise SignatureError(f"{where}: {SUMS_SIG} signs {payload.get('file')!r}, not {SUMS}")
    check_digest(f"{where}: {SUMS}", hashlib.sha256(sums_bytes).hexdigest(), len(sums_bytes), payload.get("sha256"),
                 payload.get("bytes"), "file list")
    return _parse_sums(sums_bytes.decode(errors="replace"), f"{where}: {SUMS}")


def _member_name(member: tarfile.TarInfo, archive: Path) -> tuple[str, str]:
    """(top folder, path below it) of a safe member; SignatureError for links, devices and escaping paths."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) == 0:
        raise SignatureError(f"{archive}: member {member.name!r} escapes the bundle folder")
    if not (member.isfile() or member.isdir()):
        raise SignatureError(f"{archive}: member {member.name!r} is a link or device; a bundle holds plain files only")
    return path.parts[0], "/".join(path.parts[1:])


def verify_archive(archive: Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    detached = signature_path(archive)
    if detached.is_file():
        verify_file(archive, public_key, detached)
    files: dict[str, str] = {}
    tops: set[str] = set()
    sums_bytes = sig_bytes = None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                top, name = _member_name(member, archive)
                tops.add(top)
                if member.isdir():
                    continue
                if not name or name in files:
                    raise SignatureError(f"{archive}: member {member.name!r} appears twice or outside the top folder")
                stream = tar.extractfile(member)
                digest, kept = hashlib.sha256(), b""
                while block := stream.read(1 << 20):  # type: ignore[union-attr]
                    digest.update(block)
                    if name in UNLISTED and len(kept) <= SMALL_FILE_LIMIT:
                        kept += block
                files[name] = digest.hexdigest()
                if name in UNLISTED and len(kept) > SMALL_FILE_LIMIT:
                    raise SignatureError(f"{archive}: {name} is {member.size} bytes: not an edgefer {name}")
                if name == SUMS:
                    sums_bytes = kept
                elif name == SUMS_SIG:
                    sig_bytes = kept
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SignatureError(f"{archive}: not a readable bundle ({exc}): corrupt or tampered") from None
    if len(tops) != 1:
        raise SignatureError(f"{archive}: {len(tops)} top folders ({', '.join(sorted(tops)[:3])}); a bundle has one")
    sums = _check_sums(sums_bytes, sig_bytes, str(archive), public_key)
    _compare(files, sums, str(archive))
    return {"bundle": str(archive), "key_id": key_id(public_key), "files": len(sums),
            "detached_signature": detached.is_file()}


def verify_folder(folder: Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(folder):
        for entry in [*dirs, *names]:
            if (Path(root) / entry).is_symlink():
                raise SignatureError(f"{Path(root) / entry}: a link; a bundle holds plain files only")
        for entry in names:
            path = Path(root) / entry
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
            files[path.relative_to(folder).as_posix()] = digest.hexdigest()
    sums_path, sig_path = folder / SUMS, folder / SUMS_SIG
    sums = _check_sums(sums_path.read_bytes() if sums_path.is_file() else None,
                       sig_path.read_bytes() if sig_path.is_file() else None, str(folder), public_key)
    _compare(files, sums, str(folder))
    return {"bundle": str(folder), "key_id": key_id(public_key), "files": len(sums), "detached_signature": False}


def verify_bundle(path: str | Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Check a bundle archive (``.tar.gz``) or an unpacked bundle folder against ``public_key``."""
    path = Path(path)
    if path.is_dir():
        return verify_folder(path, public_key)
    if not path.is_file():
        raise SignatureError(f"{path}: no such bundle")
    return verify_archive(path, public_key)
