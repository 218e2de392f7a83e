"""python/hetensor/_core.pyi describes the compiled module exactly.

``mypy.stubtest`` compares names, attributes and read-only properties (it is
skipped when mypy is not installed: ``pip install mypy``). pybind11 functions
carry their signature only in the first line of their docstring, which
stubtest cannot read, so the parameter names of every function and method are
compared with the stub here as well.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

import hetensor._core as core

ROOT = pathlib.Path(__file__).resolve().parents[1]
STUB = ROOT / "python" / "hetensor" / "_core.pyi"


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text())


def _stub_functions():
    """{qualified name: [parameter names without self]} of the stub's functions and methods
    (keyword-only ones after the positional ones, as pybind11 lists them)."""
    out = {}
    for node in _stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = [a.arg for a in node.args.args + node.args.kwonlyargs]
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not any(
                        isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list):
                    out[f"{node.name}.{item.name}"] = [a.arg for a in item.args.args + item.args.kwonlyargs][1:]
    return out


def _runtime_params(obj) -> list:
    """Parameter names from a pybind11 docstring's signature line (overloads: the first)."""
    doc = (obj.__doc__ or "").strip().splitlines()
    line = next((ln for ln in doc if "(" in ln and "->" in ln), "")
    m = re.match(r"^(?:\d+\.\s*)?\w+\((.*)\)\s*->", line)
    if not m:
        return None
    params, depth, cur = [], 0, ""
    for ch in m.group(1):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            params.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        params.append(cur)
    names = [p.split(":")[0].strip() for p in params]
    return [n for n in names if n not in ("self", "*", "/")]


def test_every_name_of_core_is_in_the_stub():
    tree = _stub_tree()
    stub = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stub |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    runtime = {n for n in dir(core) if not n.startswith("_")}
    assert not runtime - stub, f"missing from _core.pyi: {sorted(runtime - stub)}"
    assert not stub - runtime, f"in _core.pyi but not in _core: {sorted(stub - runtime)}"


def test_stub_signatures_match_the_bindings():
    bad = []
    for qual, params in _stub_functions().items():
        if qual.endswith("__init__"):
            continue
        obj = core
        for part in qual.split("."):
            obj = getattr(obj, part)
        got = _runtime_params(obj)
        if got is None:
            continue
        # positional names arg0, arg1 ... carry no name: compare the count only
        if len(got) != len(params) or any(g != p for g, p in zip(got, params) if not re.fullmatch(r"arg\d+", g)):
            bad.append(f"{qual}: stub {params}, bindings {got}")
    assert not bad, "\n".join(bad)


def test_stubtest_is_clean():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    res = subprocess.run([sys.executable, "-m", "mypy.stubtest", "hetensor._core", "--allowlist",
                          str(ROOT / "tests" / "stubtest_allowlist.txt")], capture_output=True, text=True,
                         timeout=300, cwd=ROOT / "tests")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
