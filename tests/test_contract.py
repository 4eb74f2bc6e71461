from __future__ import annotations

import json

import pytest

from edgefer.edge.contract import (
    ContractError,
    CropSpec,
    InputSpec,
    ModelContract,
    OutputSpec,
    load_contract,
    read_contract,
    sha256_of,
    write_contract,
)


def _contract(model_path) -> ModelContract:
    return ModelContract(
        name="m", task="expression", file=model_path.name, format="tflite", sha256=sha256_of(model_path),
        bytes=model_path.stat().st_size, labels=["a", "b"],
        input=InputSpec(height=48, width=48, dtype="int8", scale=1.0, zero_point=-128),
        output=OutputSpec(dtype="int8", scale=0.05, zero_point=-3), crop=CropSpec(margin=0.09),
        metrics={"test": {"accuracy": 0.7}}, tools={"torch": "2.13.0"},
    )


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"TFL3" + bytes(range(200)))
    return path


def test_round_trip(model_file):
    contract = _contract(model_file)
    write_contract(contract, model_file.with_suffix(".json"))
    again = load_contract(model_file)
    assert again == contract
    assert again.input.zero_point == -128 and again.crop.margin == 0.09


def test_corrupt_or_truncated_model_is_refused(model_file):
    write_contract(_contract(model_file), model_file.with_suffix(".json"))
    model_file.write_bytes(model_file.read_bytes()[:-1])
    with pytest.raises(ContractError, match="203 bytes, the sidecar says 204: truncated or replaced"):
        load_contract(model_file)
    model_file.write_bytes(b"XXXX" + bytes(range(200)))
    with pytest.raises(ContractError, match="sha256 .* does not match"):
        load_contract(model_file)


def test_missing_files_are_named(model_file, tmp_path):
    with pytest.raises(ContractError, match=r"m.json: sidecar missing"):
        load_contract(model_file)
    write_contract(_contract(model_file), model_file.with_suffix(".json"))
    model_file.unlink()
    with pytest.raises(ContractError, match=r"m.tflite: model file missing"):
        load_contract(model_file)


def test_contract_violations_name_the_field(model_file):
    sidecar = model_file.with_suffix(".json")
    raw = _contract(model_file).model_dump(mode="json")
    raw["input"]["dtype"] = "int4"
    raw["surprise_key"] = 1
    sidecar.write_text(json.dumps(raw))
    with pytest.raises(ContractError) as err:
        read_contract(sidecar)
    assert "input.dtype" in str(err.value) and "surprise_key" in str(err.value)
    sidecar.write_text("{not json")
    with pytest.raises(ContractError, match="not valid JSON"):
        read_contract(sidecar)
    raw = _contract(model_file).model_dump(mode="json")
    raw["schema_version"] = 99
    sidecar.write_text(json.dumps(raw))
    with pytest.raises(ContractError, match="schema_version 99 is not supported"):
        read_contract(sidecar)
