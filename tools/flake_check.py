"""Run the whole test suite N times from a fresh clone and report every test whose verdict changed (a flake).

    python tools/flake_check.py [--runs 5] [--repo .] [--workdir DIR] [--keep]

The clone is installed exactly as CI installs it (the README's set-up command, from ``.ci/run``), then the suite
runs N times, each under a different condition that a CI machine can differ in, so a verdict that depends on
one of them shows up as a flake rather than as a random red landing later:

- ``ci``: ``.ci/run``'s own test command, in file order;
- ``reversed``: the test files and the tests inside each in reverse order (order dependence);
- ``one-thread``: OMP/MKL/torch at one thread, modules shuffled (thread-count dependence);
- ``avx2``: torch's kernels and oneDNN capped at AVX2, as on a host without AVX-512, modules shuffled;
- ``busy``: another process keeps one core busy throughout, modules shuffled (timing dependence).

Past five runs the conditions repeat with fresh shuffles. The CPU and its int8 features are printed with the
result. Exit status 0 only when every run passed every test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgefer.edge.bench import machine_line  # noqa: E402

CONDITIONS = ("ci", "reversed", "one-thread", "avx2", "busy")
ENV = {
    "one-thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def install_commands(ci_script: Path) -> list[str]:
    """The set-up lines of ``.ci/run``: everything before its ruff and pytest lines."""
    lines = []
    for line in ci_script.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "set ", "cd ")):
            continue
        if stripped.startswith(("ruff", "python -m pytest", "pytest")):
            break
        lines.append(stripped)
    return lines


def collect(clone: Path, python: Path) -> list[str]:
    out = subprocess.run([str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=clone, capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if "::" in line]


def ordered(node_ids: list[str], condition: str, rng: random.Random) -> list[str] | None:
    """The order to run in (None: pytest's own). Tests stay grouped by file so module fixtures set up once."""
    if condition == "ci":
        return None
    by_file: dict[str, list[str]] = defaultdict(list)
    for node in node_ids:
        by_file[node.split("::", 1)[0]].append(node)
    files = list(by_file)
    if condition == "reversed":
        return [node for f in reversed(files) for node in reversed(by_file[f])]
    rng.shuffle(files)
    return [node for f in files for node in by_file[f]]


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def run_suite(clone: Path, python: Path, condition: str, order: list[str] | None, junit: Path) -> dict:
    env = {**os.environ, **ENV.get(condition, {})}
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    cmd += order if order is not None else []
    hog = None
    if condition == "busy":
        hog = multiprocessing.Process(target=_spin, args=(time.time() + 3600,), daemon=True)
        hog.start()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)
    finally:
        if hog is not None:
            hog.terminate()
            hog.join()
    verdicts = {}
    if junit.is_file():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            tags = {child.tag for child in case}
            verdicts[name] = ("failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags
                              else "passed")
    tail = "\n".join(proc.stdout.splitlines()[-3:])
    return {"condition": condition, "returncode": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
            "verdicts": verdicts, "tail": tail}


def flakes(runs: list[dict]) -> dict[str, list[str]]:
    """Tests whose verdict differs between runs (or that are missing from one), with the verdict per run."""
    names = sorted({name for run in runs for name in run["verdicts"]})
    table = {name: [run["verdicts"].get(name, "missing") for run in runs] for name in names}
    return {name: v for name, v in table.items() if len(set(v)) > 1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repo", default=str(ROOT), help="the repository to clone (its committed HEAD)")
    ap.add_argument("--workdir", help="where to clone (default: a new temporary folder)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the module shuffles")
    ap.add_argument("--keep", action="store_true", help="keep the clone and its venv")
    ap.add_argument("--json", help="write the report here as well")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="flake-"))
    clone = work / "clone"
    print(f"machine: {machine_line()}", flush=True)
    subprocess.run(["git", "clone", "--quiet", args.repo, str(clone)], check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                          check=True).stdout.strip()
    print(f"fresh clone of {args.repo} at {head} in {clone}; installing as .ci/run does", flush=True)
    start = time.perf_counter()
    setup = " && ".join(install_commands(clone / ".ci" / "run"))
    subprocess.run(["bash", "-c", f"set -euo pipefail; {setup}"], cwd=clone, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"installed in {time.perf_counter() - start:.0f} s: {setup}", flush=True)
    python = clone / ".venv" / "bin" / "python"
    node_ids = collect(clone, python)
    rng = random.Random(args.seed)
    runs = []
    for i in range(args.runs):
        condition = CONDITIONS[i % len(CONDITIONS)]
        run = run_suite(clone, python, condition, ordered(node_ids, condition, rng), work / f"junit-{i}.xml")
        runs.append(run)
        counts = defaultdict(int)
        for verdict in run["verdicts"].values():
            counts[verdict] += 1
        env = " ".join(f"{k}={v}" for k, v in ENV.get(condition, {}).items())
        print(f"run {i + 1}/{args.runs} [{condition}{' ' + env if env else ''}]: {dict(counts)} in {run['seconds']} s "
              f"(exit {run['returncode']})", flush=True)
    changed = flakes(runs)
    failed = sorted({name for run in runs for name, v in run["verdicts"].items() if v == "failed"})
    print(f"\n{len(node_ids)} tests x {len(runs)} runs on {machine_line()}")
    print(f"flakes (verdict changed between runs): {len(changed)}")
    for name, verdicts in changed.items():
        print(f"  {name}: " + ", ".join(f"{run['condition']}={v}" for run, v in zip(runs, verdicts, strict=True)))
    print(f"failed in some run: {len(failed)}")
    for name in failed:
        print(f"  {name}")
    clean = not changed and not failed and all(run["returncode"] == 0 for run in runs)
    print("CLEAN" if clean else "NOT CLEAN")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine_line(), "commit": head, "tests": len(node_ids), "clean": clean,
            "runs": [{k: v for k, v in run.items() if k != "verdicts"} for run in runs],
            "flakes": changed, "failed": failed}, indent=1) + "\n")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
