"""tools/compare_peer.py: the shipped model against a brought .tflite on FER2013 (+ FER+ labels) and on another
set's validation split (``--also``, RAF-DB's slice), each side reading the other set at its own input size."""

from __future__ import annotations

import json
import shutil

import pytest
from fixtures import load_tool, write_fer2013, write_ferplus, write_rafdb

from edgefer.edge.contract import load_contract
from edgefer.edge.models import resolve

compare_peer = load_tool("compare_peer")


def test_the_shipped_model_against_itself_brought_as_a_peer_scores_the_same_on_every_set(tmp_path, capsys):
    fer = tmp_path / "fer2013.csv"
    labels = write_fer2013(fer, {"Training": 7, "PublicTest": 7, "PrivateTest": 21})
    write_ferplus(tmp_path / "fer2013new.csv", labels)
    rafdb = tmp_path / "rafdb"
    write_rafdb(rafdb, per_class=10)
    # the shipped model's own file, brought as a plain .tflite with no sidecar (raw pixels, 48x48): through the
    # peer path it must score exactly what it scores as our model, on FER2013 and on RAF-DB's slice alike
    peer = tmp_path / "brought.tflite"
    shutil.copy(resolve("fer-student"), peer)
    sidecar_before = resolve("fer-student").with_suffix(".json").read_bytes()
    out = tmp_path / "out"
    compare_peer.main(["--data", str(fer), "--peer", str(peer), "--peer-convention", "raw48", "--also", str(rafdb),
                  "--votes", str(tmp_path / "fer2013new.csv"), "--rounds", "3", "--out", str(out)])
    result = json.loads((out / "compare_peer.json").read_text())
    assert result["n"] == 21 and result["split"].endswith(":PrivateTest")
    ours, brought = result["rows"]["fer-student"], result["rows"]["peer:brought"]
    for key in ("accuracy", "uar", "ferplus", "also"):
        assert ours[key] == brought[key], key
    (raf_source,) = ours["also"]
    assert raf_source.endswith(":val") and ours["also"][raf_source]["n"] == 7  # one per class, the slice only
    assert ours["bytes"] == load_contract(resolve("fer-student")).bytes and brought["speedup_vs_peer"] == 1.0
    assert (out / "accuracy_vs_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rafdb:val acc" in capsys.readouterr().out.replace(str(rafdb), "rafdb")
    assert resolve("fer-student").with_suffix(".json").read_bytes() == sidecar_before  # no --record: untouched


def test_counted_instructions_are_matched_by_file_and_set_beside_the_peers(tmp_path, capsys):
    fer = tmp_path / "fer2013.csv"
    write_fer2013(fer, {"Training": 7, "PublicTest": 7, "PrivateTest": 14})
    peer = tmp_path / "brought.tflite"
    shutil.copy(resolve("fer-student"), peer)
    # count_instructions' --json-out layout; the counts are made up, the matching by file is what is tested
    counts = tmp_path / "count.json"
    counts.write_text(json.dumps({"models": {
        "fer-student": {"path": str(resolve("fer-student")), "counted": {"per_unit": 1_500_000.0}},
        "peer:brought": {"path": str(peer), "counted": {"per_unit": 6_000_000.0}},
        "not-compared": {"path": str(tmp_path / "other.tflite"), "counted": {"per_unit": 1.0}},
        "timed-only": {"path": str(tmp_path / "timed.tflite"), "counted": None}}}))
    out = tmp_path / "out"
    compare_peer.main(["--data", str(fer), "--peer", str(peer), "--peer-convention", "raw48", "--rounds", "3",
                  "--counts", str(counts), "--out", str(out)])
    rows = json.loads((out / "compare_peer.json").read_text())["rows"]
    assert rows["fer-student"]["instructions_per_face"] == 1_500_000.0
    assert rows["fer-student"]["counted_vs_peer"] == 4.0 and rows["peer:brought"]["counted_vs_peer"] == 1.0
    assert "M instr" in capsys.readouterr().out
    assert (out / "accuracy_vs_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    counts.write_text("{}")
    with pytest.raises(SystemExit, match=r"count\.json: not a tools/count_instructions\.py --json-out file"):
        compare_peer.main(["--data", str(fer), "--peer", str(peer), "--peer-convention", "raw48", "--rounds", "3",
                      "--counts", str(counts), "--out", str(out)])
