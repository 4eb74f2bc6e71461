"""ed25519 signatures for models (with their sidecars) and bundles, and the device's trust policy.

Why signatures on top of the sidecar's sha256: whoever can replace a model file can replace its sidecar too, so
the sha256 only catches accidents. A signature made with the fleet's private key (kept on the build machine,
never on a device) can only be checked, not forged, with the public key the device holds
(``/etc/edgefer/trusted.pub``, installed by the first signed bundle).

A signature is a small JSON file beside what it signs (``NAME.tflite.sig``, ``SHA256SUMS.sig``,
``edgefer-rpi.tar.gz.sig``): what was signed (file names, sizes, sha256 of the model AND of its sidecar's exact
bytes, so swapping either is caught), the key's fingerprint (for the message, never for the verdict) and the
ed25519 signature over ``DOMAIN`` + the canonical JSON of that payload. Keys are standard PEM (PKCS#8 private,
SubjectPublicKeyInfo public): ``openssl pkey -in fleet.pub -pubin -text`` reads them.

``cryptography`` is imported only when a key is used, so a developer checkout with no key starts as fast as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefer.edge.contract import ContractError, sha256_of, sidecar_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger("edgefer.signing")

#: Where a device keeps the fleet's public key; the bundle's install.sh puts it there.
DEFAULT_TRUSTED_KEY = Path("/etc/edgefer/trusted.pub")
FORMAT = "edgefer-signature/1"
#: Prefixed to every signed payload, so an edgefer signature can never be replayed as some other protocol's.
DOMAIN = b"edgefer-signature/1\n"
SIG_SUFFIX = ".sig"


class SignatureError(ContractError):
    """A key or signature is missing, unreadable, from the wrong key, or does not match the bytes it signs."""


# --- keys -------------------------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: the first 16 hex digits of the sha256 of its 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_keypair(out_dir: str | Path, name: str = "edgefer") -> dict[str, str]:
    """Write ``out_dir/NAME.key`` (private, PEM, mode 0600) and ``NAME.pub``; never overwrites either."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out_dir = Path(out_dir)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing:
        raise SignatureError(f"{', '.join(existing)}: already exists; keygen never overwrites a key (devices may "
                             "trust it): choose another --out or --name")
    out_dir.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    # O_EXCL: created here or refused (no race with another keygen); 0600 from the first byte, not chmod-ed later.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(public_pem(private_key.public_key()))
    return {"private": str(private_path), "public": str(public_path), "key_id": key_id(private_key.public_key())}


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    if not path.is_file():
        raise SignatureError(f"{path}: private key not found (make one with: edgefer keygen --out DIR)")
    data = path.read_bytes()
    if b"PUBLIC KEY" in data:
        raise SignatureError(f"{path}: a public key; signing needs the private key (NAME.key from edgefer keygen)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:  # as ssh does: a key others can read may already be leaked
        raise SignatureError(f"{path}: private key readable by others (mode {mode:04o}); chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: a {type(key).__name__.lstrip('_')}, edgefer signs with ed25519 keys only")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = Path(path)
    if not path.is_file():
        raise SignatureError(f"{path}: trusted public key not found")
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        raise SignatureError(f"{path}: a PRIVATE key; a device holds only the public key (NAME.pub): remove this "
                             "file from the device and treat the key as leaked")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path}: a {type(key).__name__.lstrip('_')}, edgefer trusts ed25519 keys only")
    return key


# --- signature files --------------------------------------------------------------------------------------------


def signature_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIG_SUFFIX)


def _message(payload: dict[str, Any]) -> bytes:
    return DOMAIN + json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _write_signature(dest: Path, payload: dict[str, Any], private_key: Ed25519PrivateKey) -> Path:
    signature = private_key.sign(_message(payload))
    doc = {"format": FORMAT, "algorithm": "ed25519", "key_id": key_id(private_key.public_key()), "signed": payload,
           "signature": base64.b64encode(signature).decode()}
    dest.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return dest


def _read_verified(sig: Path, public_key: Ed25519PublicKey, what: Path | str) -> dict[str, Any]:
    """The payload of ``sig`` after checking it was signed by ``public_key``; SignatureError naming what failed."""
    if not sig.is_file():
        raise SignatureError(f"{what}: unsigned (no {sig.name} beside it); this device only accepts what key "
                             f"{key_id(public_key)} signed")
    return verified_payload(sig.read_bytes(), sig, public_key, what)


def verified_payload(sig_bytes: bytes, sig: Path | str, public_key: Ed25519PublicKey,
                     what: Path | str) -> dict[str, Any]:
    """The payload of the signature document ``sig_bytes`` (read from ``sig``) once ``public_key`` verifies it."""
    from cryptography.exceptions import InvalidSignature

    trusted = key_id(public_key)
    try:
        doc = json.loads(sig_bytes.decode())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("algorithm") != "ed25519":
            raise ValueError(f"expected format {FORMAT!r} with algorithm 'ed25519'")
        payload, signature = doc["signed"], base64.b64decode(doc["signature"], validate=True)
        if not isinstance(payload, dict):
            raise ValueError("'signed' is not an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{sig}: not a readable edgefer signature ({exc})") from None
    signer = doc.get("key_id")
    if signer != trusted:
        raise SignatureError(f"{what}: signed by key {signer}, but the trusted key is {trusted}: not signed by this "
                             "fleet's key")
    try:
        public_key.verify(signature, _message(payload))
    except InvalidSignature:
        raise SignatureError(f"{sig}: the signature does not verify with key {trusted}: the signature file was "
                             "altered") from None
    return payload


def check_digest(label: Path | str, digest: str, size: int, signed_sha256: Any, signed_bytes: Any,
                 what: str) -> None:
    """SignatureError unless ``digest`` and ``size`` are what the signed payload says."""
    if digest != signed_sha256 or (signed_bytes is not None and size != signed_bytes):
        raise SignatureError(f"{label}: changed after it was signed (sha256 {digest[:12]}..., signed "
                             f"{str(signed_sha256)[:12]}...): tampered or corrupt {what}")


def _check_file(path: Path, signed_sha256: Any, signed_bytes: Any, what: str) -> None:
    if not path.is_file():
        raise SignatureError(f"{path}: missing; the signature covers it ({what})")
    check_digest(path, sha256_of(path), path.stat().st_size, signed_sha256, signed_bytes, what)


# --- models -----------------------------------------------------------------------------------------------------


def sign_model(model_path: str | Path, private_key: Ed25519PrivateKey) -> Path:
    """Write ``MODEL.sig`` over the model's bytes and its sidecar's exact bytes (both must exist and agree)."""
    from edgefer.edge.contract import load_contract

    model_path = Path(model_path)
    load_contract(model_path)  # never sign a model that its own sidecar already refuses
    sidecar = sidecar_path(model_path)
    payload = {"kind": "model", "model": model_path.name, "model_sha256": sha256_of(model_path),
               "model_bytes": model_path.stat().st_size, "sidecar": sidecar.name,
               "sidecar_sha256": sha256_of(sidecar), "sidecar_bytes": sidecar.stat().st_size}
    return _write_signature(signature_path(model_path), payload, private_key)


def verify_model(model_path: str | Path, public_key: Ed25519PublicKey) -> str:
    """Check ``MODEL.sig`` against the model and its sidecar; returns the signer's key id."""
    model_path = Path(model_path)
    sig = signature_path(model_path)
    payload = _read_verified(sig, public_key, model_path)
    sidecar = sidecar_path(model_path)
    if payload.get("kind") != "model" or payload.get("model") != model_path.name \
            or payload.get("sidecar") != sidecar.name:
        raise SignatureError(f"{sig}: signs {payload.get('kind')} {payload.get('model')!r}, not the model "
                             f"{model_path.name!r}: a signature copied from another file")
    _check_file(model_path, payload.get("model_sha256"), payload.get("model_bytes"), "model")
    _check_file(sidecar, payload.get("sidecar_sha256"), payload.get("sidecar_bytes"),
                "sidecar (signed together with its model)")
    return key_id(public_key)


# --- any file (the bundle archive, its SHA256SUMS) ----------------------------------------------------------------


def sign_file(path: str | Path, private_key: Ed25519PrivateKey) -> Path:
    path = Path(path)
    payload = {"kind": "file", "file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size}
    return _write_signature(signature_path(path), payload, private_key)


def verify_file(path: str | Path, public_key: Ed25519PublicKey, sig: Path | None = None) -> str:
    """Check a file against its detached signature (``sig``, default ``PATH.sig``). The file's name is not
    checked, so a renamed archive still verifies; its bytes are."""
    path = Path(path)
    payload = _read_verified(sig or signature_path(path), public_key, path)
    if payload.get("kind") != "file":
        raise SignatureError(f"{sig or signature_path(path)}: signs a {payload.get('kind')}, not a file")
    _check_file(path, payload.get("sha256"), payload.get("bytes"), "file")
    return key_id(public_key)


# --- the device's policy ------------------------------------------------------------------------------------------


class TrustPolicy:
    """Which models this process may load: all (no key: a developer checkout), or only those signed by the
    trusted key (a device), with unsigned ones let through only when ``allow_unsigned`` (development)."""

    def __init__(self, public_key: Ed25519PublicKey | None = None, key_path: Path | None = None,
                 allow_unsigned: bool = False) -> None:
        self.public_key = public_key
        self.key_path = key_path
        self.allow_unsigned = allow_unsigned
        self.verified: list[str] = []

    @classmethod
    def from_config(cls, trusted_key: str | Path | None = None, allow_unsigned: bool = False) -> TrustPolicy:
        """``trusted_key`` None: the device's key at DEFAULT_TRUSTED_KEY if there is one, else no checks. A path
        given explicitly must exist: a typo must not turn the checks off."""
        if trusted_key is None:
            if not DEFAULT_TRUSTED_KEY.is_file():
                return cls(allow_unsigned=allow_unsigned)
            trusted_key = DEFAULT_TRUSTED_KEY
        path = Path(trusted_key)
        if not path.is_file():
            raise SignatureError(f"security.trusted_key: {path}: no such file (the public key the models must be "
                                 "signed by; null: /etc/edgefer/trusted.pub if present)")
        return cls(load_public_key(path), path, allow_unsigned)

    @property
    def enforced(self) -> bool:
        return self.public_key is not None

    def key_id(self) -> str | None:
        return key_id(self.public_key) if self.public_key is not None else None

    def check_model(self, model_path: str | Path) -> str:
        """'verified' / 'unchecked' (no key) / 'unsigned' (allowed for development); SignatureError otherwise."""
        if self.public_key is None:
            return "unchecked"
        model_path = Path(model_path)
        unsigned = not signature_path(model_path).exists()
        if unsigned and self.allow_unsigned:
            log.warning("%s: no signature; loaded only because security.allow_unsigned is on (development only)",
                        model_path)
            return "unsigned"
        try:
            verify_model(model_path, self.public_key)
        except SignatureError as exc:  # the switch is named only where it would help: never for a bad signature
            hint = " (for development only: security.allow_unsigned: true)" if unsigned else ""
            raise SignatureError(f"{exc}; trusted key {self.key_path}{hint}") from None
        self.verified.append(model_path.name)
        return "verified"

    def describe(self) -> str:
        if self.public_key is None:
            return "signatures: not checked (no trusted key)"
        extra = ", unsigned models allowed (development)" if self.allow_unsigned else ""
        return f"signatures: ed25519 key {self.key_id()} ({len(self.verified)} model(s) verified{extra})"
