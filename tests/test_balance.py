"""Logit adjustment: the grid search on hand-made logits, folding into the classifier, and the step on fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgefer.compile import balance, nets, steps
from edgefer.compile.train import TrainConfig, predict_logits


def test_log_prior_counts_each_class_and_never_takes_log_zero():
    prior = balance.log_prior(np.array([0, 0, 0, 1]), 3)
    assert np.exp(prior) == pytest.approx([3 / 5, 1 / 5, 1 / 5])  # the unseen class counts as 1


def test_tau_search_finds_the_smallest_shift_that_recovers_the_rare_class():
    # two classes, prior 0.8 / 0.2: log-prior gap ln 4 = 1.386. Rare-class samples lose by 0.5 logits, common
    # ones win by 2.0, so any tau in (0.5 / 1.386, 2.0 / 1.386) = (0.36, 1.44) classifies everything right.
    prior = np.log(np.array([0.8, 0.2]))
    logits = np.array([[0.0, -0.5]] * 4 + [[0.0, -2.0]] * 16)
    targets = np.array([1] * 4 + [0] * 16)
    rows = balance.tau_table(logits, targets, ["common", "rare"], prior)
    at = {r["tau"]: r for r in rows}
    assert at[0.0]["accuracy"] == pytest.approx(0.8) and at[0.0]["uar"] == pytest.approx(0.5)
    assert at[0.35]["uar"] == pytest.approx(0.5)
    assert at[1.4]["accuracy"] == at[1.4]["uar"] == pytest.approx(1.0)
    assert at[1.45]["accuracy"] == pytest.approx(0.2)
    chosen = balance.choose_tau(rows)
    assert chosen["tau"] == pytest.approx(0.4) and chosen["score"] == pytest.approx(1.0)


def test_selection_score_weighs_accuracy_and_uar_equally():
    assert balance.selection_score(0.7, 0.6) == pytest.approx(0.65)


def test_folding_adds_the_shift_to_every_output():
    torch.manual_seed(0)
    model = nets.build("micro", 7).eval()
    x = torch.rand(5, 1, 48, 48) * 255
    with torch.no_grad():
        before = model(x)
    shift = np.linspace(-1, 1, 7)
    balance.fold_into_classifier(model, shift)
    with torch.no_grad():
        after = model(x)
    assert (after - before).numpy() == pytest.approx(np.tile(shift, (5, 1)), abs=1e-5)
    with pytest.raises(ValueError, match="7 outputs"):
        balance.fold_into_classifier(model, np.zeros(3))


def test_balance_step_writes_an_adjusted_model_chosen_on_validation(fer_files, tmp_path):
    data = fer_files["csv"]
    steps.distill(data, tmp_path / "student", arch="micro",
                  cfg=TrainConfig(epochs=2, lr=0.05, threads=1, batch_size=64))
    summary = steps.balance(data, tmp_path / "student" / "best.pt", tmp_path / "balanced")
    assert summary["tau"] in balance.TAU_GRID
    assert summary["chosen_by"] == balance.SELECTION_RULE
    assert summary["validation"].endswith(":PublicTest")  # the split the rule looked at, by name
    assert summary["val_after"]["score"] >= summary["val_before"]["score"]
    assert json.loads((tmp_path / "balanced" / "summary.json").read_text())["source"].endswith("best.pt")
    from edgefer.compile.data import load_dataset

    val = load_dataset(data, "PublicTest")
    original = predict_logits(torch.load(tmp_path / "student" / "best.pt", weights_only=False), val.images)
    adjusted = predict_logits(torch.load(tmp_path / "balanced" / "best.pt", weights_only=False), val.images)
    expected = original - summary["tau"] * np.array(summary["log_prior"])
    assert adjusted == pytest.approx(expected, abs=1e-4)
    given = steps.balance(data, tmp_path / "student" / "best.pt", tmp_path / "given", tau=0.5)
    assert given["tau"] == 0.5 and given["chosen_by"] == "given"


def test_balance_command_prints_the_choice_and_writes_the_model(fer_files, tmp_path, capsys):
    from edgefer.edge.cli import main

    data = str(fer_files["csv"])
    assert main(["distill", "--data", data, "--arch", "micro", "--out", str(tmp_path / "s"), "--epochs", "1",
                 "--threads", "1"]) == 0
    assert main(["balance", "--data", data, "--model", str(tmp_path / "s" / "best.pt"),
                 "--out", str(tmp_path / "la"), "--tau", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "tau +0.25, chosen by: given" in out
    assert (tmp_path / "la" / "best.pt").is_file()


def test_an_incumbent_stays_unless_beaten_by_more_than_the_margin():
    rows = [{"run": "old", "score": 0.6572}, {"run": "new", "score": 0.6574}, {"run": "bad", "score": 0.60}]
    assert balance.choose_run(rows)["run"] == "new"
    assert balance.choose_run(rows, incumbent="old", margin=0.005)["run"] == "old"
    rows[1]["score"] = 0.6630
    assert balance.choose_run(rows, incumbent="old", margin=0.005)["run"] == "new"
    with pytest.raises(ValueError, match="not among the candidates"):
        balance.choose_run(rows, incumbent="gone")
