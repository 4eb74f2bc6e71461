"""tools/teacher_ensemble.py: two trained teachers (at two input sides) and their mean, scored on the validation
splits of FER2013 and RAF-DB; the declared rule picks one and its soft labels go to the students."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import load_tool, write_fer2013, write_rafdb

from edgefer.compile import steps, teacher
from edgefer.compile.data import load_dataset
from edgefer.compile.train import TrainConfig

FAST = dict(lr=0.05, threads=1, batch_size=32, epochs=1, max_steps_per_epoch=3, alpha=0.0)


teacher_ensemble = load_tool("teacher_ensemble")


def test_two_teachers_and_their_mean_are_scored_and_the_rules_pick_is_written(tmp_path, capsys):
    fer = tmp_path / "fer2013.csv"
    write_fer2013(fer, {"Training": 70, "PublicTest": 21, "PrivateTest": 14})
    write_rafdb(tmp_path / "rafdb", per_class=10)
    mix = [str(fer), str(tmp_path / "rafdb")]
    members = {"a": 48, "b": 64}
    for seed, (name, size) in enumerate(members.items()):
        steps.make_teacher(mix, tmp_path / name / "soft_labels.npz", train_arch="micro",
                           cfg=TrainConfig(**FAST, seed=seed), size=size)
    out, report = tmp_path / "chosen.npz", tmp_path / "choice.json"
    argv = [str(fer), "--also", mix[1], "--out", str(out), "--json-out", str(report), "--threads", "1"]
    for name, size in members.items():
        argv += ["--member", str(tmp_path / name / "soft_labels.npz"), str(size)]
    assert teacher_ensemble.main(argv) == 0

    result = json.loads(report.read_text())
    assert list(result["candidates"]) == ["a", "b", "a+b"]
    for entry in result["candidates"].values():
        roles = {source: split["role"] for source, split in entry["splits"].items()}
        assert sorted(roles.values()) == ["test", "validation", "validation"]
        assert entry["splits"][next(s for s in roles if s.endswith("PrivateTest"))]["n"] == 14
        validation = [s["accuracy"] for s in entry["splits"].values() if s["role"] == "validation"]
        assert entry["rule_score"] == pytest.approx(np.mean(validation))
    best = max(entry["rule_score"] for entry in result["candidates"].values())
    assert result["candidates"][result["chosen"]]["rule_score"] == best

    # the written file is the chosen members' mean over the training rows, and a student's training set takes it
    train = load_dataset(mix, "train")
    probs, description = teacher.load_soft_labels(out, train)
    chosen_members = result["candidates"][result["chosen"]]["members"]
    expected = np.mean([teacher.load_soft_labels(m, train)[0] for m in chosen_members], axis=0)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert description["choice"]["chosen"] == result["chosen"] and description["members"] == chosen_members
    assert "<- chosen" in capsys.readouterr().out


def test_a_member_without_its_trained_net_is_named(tmp_path):
    lonely = tmp_path / "brought" / "soft_labels.npz"
    lonely.parent.mkdir()
    lonely.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"soft_labels\.npz: no trained net beside it"):
        teacher_ensemble.checkpoint_of(lonely)
