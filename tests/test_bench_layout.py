"""One home for the benchmarking suite: ``hetensor.bench`` imports and reports missing peers
without any optional package, and the repository's bench/ folder holds scripts, pytest-benchmark
files and results, never a module that the package imports."""

from __future__ import annotations

import ast
import json
import pathlib
import pkgutil
import subprocess
import sys

import hetensor.bench

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPTIONAL = ["openfhe", "tenseal", "desilofhe", "orion", "tqdm", "matplotlib", "pytest_benchmark"]


def test_every_bench_module_imports_without_the_optional_packages():
    names = [m.name for m in pkgutil.walk_packages(hetensor.bench.__path__, "hetensor.bench.")
             if not m.name.endswith("__main__")]
    assert "hetensor.bench.peers.tenseal_peer" in names and "hetensor.bench.cli" in names
    code = f"""
import importlib, json, sys
for name in {OPTIONAL!r}:
    sys.modules[name] = None  # import fails as if not installed
for name in {names!r}:
    importlib.import_module(name)
from hetensor.bench.peers import known_peers, make_adapter, INSTALL_HINTS
print(json.dumps({{p: [make_adapter(p).probe().status, INSTALL_HINTS[p]] for p in known_peers()}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    probes = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(probes) == ["desilofhe", "openfhe", "orion", "tenseal"]
    for peer, (status, hint) in probes.items():
        assert status in ("not_installed", "not_importable"), (peer, status)
        assert "pip install" in hint
    for peer in ("openfhe", "tenseal", "desilofhe"):  # the bench extra installs these
        assert "hetensor[bench]" in probes[peer][1]


def test_the_bench_extra_lists_the_peers_it_names():
    text = (ROOT / "pyproject.toml").read_text()
    bench = next(line for line in text.splitlines() if line.startswith("bench = "))
    for dist in ("tenseal", "desilofhe", "openfhe", "tqdm", "matplotlib", "pytest-benchmark"):
        assert f'"{dist}' in bench, dist


def test_the_bench_folder_holds_scripts_tests_and_results_only():
    allowed_data = {".json", ".png", ".md"}
    for f in (ROOT / "bench").iterdir():
        if f.is_dir():
            assert f.name in ("out", "__pycache__", ".benchmarks"), f"unexpected folder bench/{f.name}"
            continue
        if f.suffix == ".sh":  # one-command checks (gpu_check.sh): a usage comment at the top
            assert f.read_text().splitlines()[1].startswith("#"), f"bench/{f.name} needs a usage comment"
            continue
        if f.suffix != ".py":
            assert f.suffix in allowed_data, f"bench/{f.name}: results are .json / .png, notes .md"
            continue
        if f.name == "harness.py" or f.name.startswith("test_") or f.name == "conftest.py":
            continue
        tree = ast.parse(f.read_text())
        mains = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        assert mains, f"bench/{f.name} is neither a script (if __name__ == '__main__') nor a benchmark test"
        assert ast.get_docstring(tree), f"bench/{f.name} needs a docstring with the command that runs it"


def test_the_package_never_imports_the_bench_folder():
    for f in pathlib.Path(hetensor.bench.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m == "harness" or m.startswith("bench.") for m in mods), f"{f.name} imports {mods}"
