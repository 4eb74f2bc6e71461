"""tools/count_instructions.py: reading callgrind's output, the per-unit arithmetic, the child it counts, and (where
valgrind is installed) real counts of a shell loop. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import load_tool

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "count_instructions.py"


ci = load_tool("count_instructions")

HEADER = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 7\ncmd:  python x.py\npart: 1\n\n"


def test_total_from_the_totals_line_first_event(tmp_path):
    out = tmp_path / "callgrind.out"
    out.write_text(HEADER + "positions: line\nevents: Ir Dr\nsummary: 925153555 4000\n\nfl=(1) a.c\nfn=(1) f\n"
                   "16 3 1\n\ntotals: 925153555 4000\n")
    assert ci.callgrind_total(out) == 925_153_555


def test_total_falls_back_to_summary(tmp_path):
    out = tmp_path / "callgrind.out"
    out.write_text(HEADER + "events: Ir\nsummary: 479424179\n\nfl=(1) a.c\nfn=(1) f\n16 3\n")
    assert ci.callgrind_total(out) == 479_424_179


def test_total_of_a_truncated_file_names_it(tmp_path):
    out = tmp_path / "cut.out"
    out.write_text(HEADER + "events: Ir\n\nfl=(1) a.c\nfn=(1) f\n16 3\n")
    with pytest.raises(ci.CallgrindError, match=r"cut\.out.*totals"):
        ci.callgrind_total(out)


def test_per_unit_cancels_start_up():
    start_up, per_face = 475_000_000, 4_457_294
    low, high = start_up + 10 * per_face, start_up + 110 * per_face
    assert ci.per_unit(low, high, 10, 110) == per_face
    with pytest.raises(ValueError, match="must exceed"):
        ci.per_unit(low, high, 110, 110)
    with pytest.raises(ci.CallgrindError, match="did not do the work"):
        ci.per_unit(high, low, 10, 110)


def test_child_runs_a_shipped_model_and_rejects_an_unknown_mode():
    model = ROOT / "models" / "eye-state.tflite"
    done = subprocess.run([sys.executable, str(TOOL), "--child", "model", str(model), "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, str(TOOL), "--child", "nonsense", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "unknown mode 'nonsense'" in done.stderr


@pytest.mark.skipif(ci.valgrind_version() is None, reason="valgrind is not installed (apt-get install valgrind)")
def test_counted_instructions_per_loop_iteration(tmp_path):
    """A real count of a shell loop (a small process, ~1 s under valgrind) at 200, 1,200 and 2,200 iterations: the
    start-up cancels, so both differences give the same instructions per iteration."""
    def loop(n: int) -> int:
        script = f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"
        return ci.count(["/bin/sh", "-c", script], tmp_path, timeout_s=120)

    counts = {n: loop(n) for n in (200, 1200, 2200)}
    first = ci.per_unit(counts[200], counts[1200], 200, 1200)
    second = ci.per_unit(counts[1200], counts[2200], 1200, 2200)
    assert counts[200] > 100_000  # the shell's start-up alone is far more than one iteration
    assert 100 <= first <= 1_000_000
    assert second == pytest.approx(first, rel=0.01)
    assert not list(tmp_path.iterdir())  # the callgrind files were read and removed


def test_bench_models_text_names_the_cpu_int8_features():
    """A speed figure without the CPU's int8 features cannot be compared with another host's."""
    proc = subprocess.run([sys.executable, "-m", "edgefer", "bench-models", "eye-state", "--threads", "1",
                           "--runs", "5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "int8 features: " in proc.stdout.splitlines()[0]
