"""The step-by-step build scripts under tools/ (long runs, started by hand and resumed across sessions): they must
at least parse, and every tools/ script they call must exist, or a run fails hours in."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
SCRIPTS = sorted(TOOLS.glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_build_script_parses_and_calls_only_tools_that_exist(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    called = set(re.findall(r"tools/([\w-]+\.(?:py|sh))", script.read_text()))
    assert {name for name in called if not (TOOLS / name).is_file()} == set()


def test_the_student_script_names_its_rounds_when_given_another(tmp_path):
    script = TOOLS / "build_fer_student_mix.sh"
    done = subprocess.run(["bash", str(script), "a.csv", "rafdb", "peer.tflite", "4"], capture_output=True,
                          text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "RUNS": str(tmp_path)})
    assert done.returncode == 2
    assert "ROUND is 1, 2, 3, choose or all, not 4" in done.stderr
