"""ed25519 signatures with real keys (made in tmp_path, never committed): models with their sidecars, the device's
trust policy in the monitor, and the keygen / sign / verify commands. Bundles: tests/test_bundle.py."""

from __future__ import annotations

import json
import logging
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgefer.edge import signing
from edgefer.edge.cli import main
from edgefer.edge.config import validate
from edgefer.edge.contract import ContractError, load_contract, sha256_of, write_contract
from edgefer.edge.models import Classifier, models_dir
from edgefer.edge.signing import (
    SignatureError,
    TrustPolicy,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_model,
    signature_path,
    verify_model,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    fleet = generate_keypair(root / "fleet")
    other = generate_keypair(root / "other")
    return {"private": Path(fleet["private"]), "public": Path(fleet["public"]), "id": fleet["key_id"],
            "other_private": Path(other["private"]), "other_public": Path(other["public"]), "other_id": other["key_id"]}


@pytest.fixture
def signed_models(tmp_path, keys) -> Path:
    """The four shipped models copied to tmp_path and signed with the fleet key."""
    folder = tmp_path / "models"
    folder.mkdir()
    key = load_private_key(keys["private"])
    for name in ("fer-student", "eye-state", "yawn", "head-pose"):
        for suffix in (".tflite", ".json"):
            shutil.copyfile(models_dir() / f"{name}{suffix}", folder / f"{name}{suffix}")
        sign_model(folder / f"{name}.tflite", key)
    return folder


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


# --- keys -------------------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    result = generate_keypair(tmp_path / "k", "car")
    private, public = Path(result["private"]), Path(result["public"])
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert signing.key_id(load_public_key(public)) == signing.key_id(load_private_key(private).public_key())
    before = private.read_bytes()
    with pytest.raises(SignatureError, match="already exists; keygen never overwrites"):
        generate_keypair(tmp_path / "k", "car")
    public.unlink()  # one half left is still refused: the private key must survive
    with pytest.raises(SignatureError, match=r"car.key: already exists"):
        generate_keypair(tmp_path / "k", "car")
    assert private.read_bytes() == before


def test_keys_are_refused_in_the_wrong_place(tmp_path, keys):
    loose = tmp_path / "loose.key"
    shutil.copyfile(keys["private"], loose)
    loose.chmod(0o644)
    with pytest.raises(SignatureError, match=r"readable by others \(mode 0644\); chmod 600"):
        load_private_key(loose)
    with pytest.raises(SignatureError, match="a public key; signing needs the private key"):
        load_private_key(keys["public"])
    with pytest.raises(SignatureError, match="a PRIVATE key; a device holds only the public key"):
        load_public_key(keys["private"])
    (tmp_path / "junk.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    with pytest.raises(SignatureError, match="junk.pub: not a PEM public key"):
        load_public_key(tmp_path / "junk.pub")


# --- models -----------------------------------------------------------------------------------------------------


def test_sign_and_verify_round_trip(signed_models, keys):
    model = signed_models / "yawn.tflite"
    doc = json.loads(signature_path(model).read_text())
    assert doc["key_id"] == keys["id"] and doc["signed"]["sidecar"] == "yawn.json"
    assert doc["signed"]["model_sha256"] == sha256_of(model)
    assert verify_model(model, load_public_key(keys["public"])) == keys["id"]
    trust = TrustPolicy.from_config(keys["public"])
    classifier = Classifier(model, trust=trust)
    assert classifier.labels == load_contract(model).labels and trust.verified == ["yawn.tflite"]


def test_one_flipped_byte_in_the_model_is_refused(signed_models, keys):
    model = signed_models / "yawn.tflite"
    _flip(model, model.stat().st_size // 2)
    with pytest.raises(SignatureError, match=r"yawn.tflite: changed after it was signed .* tampered or corrupt model"):
        verify_model(model, load_public_key(keys["public"]))


def test_a_model_swapped_together_with_a_matching_sidecar_is_refused(signed_models, keys):
    """Whoever swaps a model can rewrite its sidecar's sha256: the sha256 check passes, the signature does not."""
    model = signed_models / "yawn.tflite"
    _flip(model, model.stat().st_size // 2)
    contract = load_contract(model, verify=False)
    write_contract(contract.model_copy(update={"sha256": sha256_of(model)}), model.with_suffix(".json"))
    load_contract(model)  # the sidecar alone is satisfied
    with pytest.raises(SignatureError, match=r"yawn.tflite: changed after it was signed"):
        Classifier(model, trust=TrustPolicy.from_config(keys["public"]))


def test_one_flipped_byte_in_the_sidecar_is_refused(signed_models, keys):
    model = signed_models / "yawn.tflite"
    sidecar = model.with_suffix(".json")
    text = sidecar.read_text()
    _flip(sidecar, text.index('"name": "yawn"') + len('"name": "'))  # 'yawn' -> 'Yawn': still a valid contract
    assert load_contract(model).name == "Yawn"
    with pytest.raises(SignatureError, match=r"yawn.json: changed after it was signed .* sidecar \(signed together"):
        Classifier(model, trust=TrustPolicy.from_config(keys["public"]))


def test_wrong_key_altered_and_copied_signatures_are_refused(signed_models, keys):
    model = signed_models / "eye-state.tflite"
    with pytest.raises(SignatureError, match=f"signed by key {keys['id']}, but the trusted key is {keys['other_id']}"):
        verify_model(model, load_public_key(keys["other_public"]))
    # a signature made with another key but claiming the fleet key's id is caught by the signature itself
    sign_model(model, load_private_key(keys["other_private"]))
    sig = signature_path(model)
    doc = json.loads(sig.read_text())
    sig.write_text(json.dumps({**doc, "key_id": keys["id"]}))
    with pytest.raises(SignatureError, match=f"eye-state.tflite.sig: the signature does not verify with key "
                                             f"{keys['id']}"):
        verify_model(model, load_public_key(keys["public"]))
    # the yawn model's genuine signature put beside the eye-state model
    shutil.copyfile(signature_path(signed_models / "yawn.tflite"), sig)
    with pytest.raises(SignatureError, match="signs model 'yawn.tflite', not the model 'eye-state.tflite'"):
        verify_model(model, load_public_key(keys["public"]))
    sig.write_text("{not json")
    with pytest.raises(SignatureError, match="eye-state.tflite.sig: not a readable edgefer signature"):
        verify_model(model, load_public_key(keys["public"]))


def test_unsigned_is_refused_unless_the_development_switch_is_on(signed_models, keys, caplog):
    model = signed_models / "fer-student.tflite"
    signature_path(model).unlink()
    with pytest.raises(SignatureError, match=r"fer-student.tflite: unsigned \(no fer-student.tflite.sig beside it\)"
                                             r".*security.allow_unsigned: true"):
        Classifier(model, trust=TrustPolicy.from_config(keys["public"]))
    dev = TrustPolicy.from_config(keys["public"], allow_unsigned=True)
    with caplog.at_level(logging.WARNING, logger="edgefer.signing"):
        Classifier(model, trust=dev)
    assert "fer-student.tflite: no signature; loaded only because security.allow_unsigned is on" in caplog.text
    tampered = signed_models / "yawn.tflite"  # the switch lets unsigned models in, never a bad signature
    _flip(tampered, 100)
    with pytest.raises(SignatureError, match="yawn.tflite: changed after it was signed"):
        Classifier(tampered, trust=dev)


def test_no_key_means_no_checks_and_the_device_key_means_checks(tmp_path, keys, monkeypatch):
    """A checkout has no /etc/edgefer/trusted.pub: shipped (unsigned) models load. A device has one: they do not."""
    monkeypatch.setattr(signing, "DEFAULT_TRUSTED_KEY", tmp_path / "absent.pub")
    assert not TrustPolicy.from_config().enforced
    assert Classifier("yawn").labels
    device_key = tmp_path / "trusted.pub"
    shutil.copyfile(keys["public"], device_key)
    monkeypatch.setattr(signing, "DEFAULT_TRUSTED_KEY", device_key)
    assert TrustPolicy.from_config().key_id() == keys["id"]
    with pytest.raises(SignatureError, match=r"edgefer/models/yawn.tflite: unsigned|models/yawn.tflite: unsigned"):
        Classifier("yawn")
    with pytest.raises(SignatureError, match=r"security.trusted_key: .*typo.pub: no such file"):
        TrustPolicy.from_config(tmp_path / "typo.pub")


# --- the monitor ------------------------------------------------------------------------------------------------


def _monitor_config(models: Path, key: Path, **security):
    return validate({"models": {name: str(models / f"{file}.tflite") for name, file in
                                (("expression", "fer-student"), ("eye_state", "eye-state"), ("yawn", "yawn"),
                                 ("head_pose", "head-pose"))},
                     "security": {"trusted_key": str(key), **security}})


def test_monitor_loads_signed_models_and_refuses_a_tampered_one(signed_models, keys):
    from edgefer.edge.monitor import Monitor

    monitor = Monitor(_monitor_config(signed_models, keys["public"]))
    assert f"signatures: ed25519 key {keys['id']} (4 model(s) verified)" in monitor.describe()
    _flip(signed_models / "eye-state.json", 40)
    with pytest.raises(ContractError, match=r"eye-state.json"):
        Monitor(_monitor_config(signed_models, keys["public"]))
    with pytest.raises(SignatureError, match="signed by key .* but the trusted key is"):
        Monitor(_monitor_config(signed_models, keys["other_public"]))


def test_monitor_dev_switch_lets_unsigned_models_run(signed_models, keys):
    from edgefer.edge.monitor import Monitor

    for sig in signed_models.glob("*.sig"):
        sig.unlink()
    with pytest.raises(SignatureError, match="fer-student.tflite: unsigned"):
        Monitor(_monitor_config(signed_models, keys["public"]))
    monitor = Monitor(_monitor_config(signed_models, keys["public"], allow_unsigned=True))
    assert "unsigned models allowed (development)" in monitor.describe()[-1]


# --- the commands -----------------------------------------------------------------------------------------------


def test_keygen_sign_verify_commands(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 2
    assert "already exists" in capsys.readouterr().err
    for suffix in (".tflite", ".json"):
        shutil.copyfile(models_dir() / f"yawn{suffix}", tmp_path / f"yawn{suffix}")
    notes = tmp_path / "notes.txt"
    notes.write_text("release notes\n")
    key, pub = str(tmp_path / "keys" / "edgefer.key"), str(tmp_path / "keys" / "edgefer.pub")
    assert main(["sign", "--key", key, str(tmp_path / "yawn.tflite"), str(notes)]) == 0
    assert main(["verify", "--key", pub, str(tmp_path / "yawn.tflite"), str(notes)]) == 0
    out = capsys.readouterr().out
    assert "yawn.tflite: model and sidecar OK" in out and "notes.txt: OK" in out
    notes.write_text("release notes, edited\n")
    assert main(["verify", "--key", pub, str(notes)]) == 2
    assert "notes.txt: changed after it was signed" in capsys.readouterr().err


def test_signing_modules_stay_on_the_device_floor():
    code = ("import sys, edgefer.edge.signing, edgefer.edge.updates, edgefer.edge.cli;"
            "bad = [m for m in sys.modules if m == 'compile' or m.startswith(('compile.', 'tools', 'torch'))];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_development_switch_is_suggested_only_for_unsigned_models(signed_models, keys):
    trust = TrustPolicy.from_config(keys["public"])
    _flip(signed_models / "yawn.tflite", 100)
    with pytest.raises(SignatureError) as refused:
        Classifier(signed_models / "yawn.tflite", trust=trust)
    assert "allow_unsigned" not in str(refused.value) and f"trusted key {keys['public']}" in str(refused.value)
