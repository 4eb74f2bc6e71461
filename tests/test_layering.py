"""The floors: ``edge/`` at the bottom, the toolchain (``compile/``) above it, ``tools/`` on top; imports only point
down and no module imports itself back through others (function-level imports count: a lazy import is still an
arrow)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the repository's folders and the import names they install under (pyproject.toml's package-dir)
PACKAGES = {"edge": "edgefer.edge", "compile": "edgefer.compile", "edgefer": "edgefer", "models": "edgefer.models"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = PACKAGES[parts[0]].split(".") + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere in it, resolved to the longest known module name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts:
                found.add(".".join(parts))
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    known = set(files)
    return {name: project_imports(path, known) - {name} for name, path in files.items()}


def test_the_device_side_imports_nothing_from_the_toolchain_or_tools():
    # edgefer.models is data (the shipped model files), not code
    offenders = {m: sorted(i for i in deps if not i.startswith(("edgefer.edge", "edgefer.models")))
                 for m, deps in graph().items() if m.startswith("edgefer.edge")}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_no_import_cycles():
    deps = graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(deps.get(node, ())):
            # a package's __init__ re-exporting its own submodules is not an arrow back up
            if node.startswith(nxt + ".") or nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(deps):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_toolchain_verbs_join_the_one_command_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from edgefer.edge.cli import build_parser; p = build_parser(); "
            "verbs = p._subparsers._group_actions[0].choices; "
            "print(sorted(verbs)); print([m for m in ('torch', 'tensorflow', 'onnx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    verbs, heavy = out.splitlines()
    for verb in ("run", "analyze", "teacher", "distill", "quantize", "compile", "bundle"):
        assert f"'{verb}'" in verbs
    assert heavy == "[]"


def test_nothing_imports_the_folders_by_their_bare_names():
    """Run from the repository root, ``edge`` and ``compile`` would also import as top-level packages (the
    folders are on sys.path), loading a second copy of every module beside ``edgefer.edge``: nothing may."""
    import re

    bare = re.compile(r"^\s*(from|import)\s+(edge|compile)\b", re.M)
    files = [p for folder in ("edge", "compile", "edgefer", "tests", "tools") for p in (ROOT / folder).rglob("*.py")]
    assert [str(p.relative_to(ROOT)) for p in files if bare.search(p.read_text())] == []
