"""The C++ unit tests of the core arithmetic (tests/cpp: modular arithmetic, NTT, RNS basis
conversion, automorphisms against 128-bit integer references; the buffer pool's reuse of cached
pages), built with CMake into
build/cpp-tests (incremental after the first build) and run through ctest."""

from __future__ import annotations

import fcntl
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "cpp-tests"
CASES = ["modarith: add", "modarith: Barrett", "numth:", "ntt: portable", "ntt: run-time", "ntt: both CPU paths",
         "rns: basis conversion", "galois: the NTT permutation"]
if sys.platform.startswith("linux"):
    CASES.append("allocator: large requests reuse cached pages")


def _tool(name: str) -> str:
    """The tool from PATH or next to this interpreter (pip's cmake and ninja wheels)."""
    found = shutil.which(name) or shutil.which(name, path=str(pathlib.Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install cmake ninja)")
    return found


@pytest.fixture(scope="module")
def built() -> pathlib.Path:
    cmake, ninja = _tool("cmake"), _tool("ninja")
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "cpp-tests.lock", "w") as lock:  # two test runs never build at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = BUILD / "CMakeCache.txt"
        if cache.exists() and f"CMAKE_HOME_DIRECTORY:INTERNAL={ROOT / 'tests' / 'cpp'}\n" not in cache.read_text():
            shutil.rmtree(BUILD)  # configured from another checkout (a moved or copied tree)
            BUILD.mkdir(parents=True)
        for cmd in ([cmake, "-S", str(ROOT / "tests" / "cpp"), "-B", str(BUILD), "-G", "Ninja",
                     f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=Release"],
                    [cmake, "--build", str(BUILD)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return BUILD


def test_core_arithmetic_cases_pass(built):
    done = subprocess.run([str(built / "hetensor_core_tests")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for case in CASES:
        assert any(line.startswith("ok   " + case) for line in lines), f"case {case!r} did not pass:\n{done.stdout}"
    assert lines[-1] == f"{len(CASES)} case(s), 0 failed"


def test_ctest_runs_the_target(built):
    ctest = _tool("ctest")
    done = subprocess.run([ctest, "--output-on-failure"], cwd=built, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HETENSOR_SIMD": "0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100% tests passed" in done.stdout


def test_a_filter_that_matches_nothing_fails(built):
    # The runner refuses an empty run, so a renamed case cannot pass by running nothing.
    done = subprocess.run([str(built / "hetensor_core_tests"), "no such case"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "0 case(s), 0 failed" in done.stdout


def test_the_unit_tests_include_only_the_layers_they_test():
    # pybind-free, and only the arithmetic layers: they build without Python and without the ckks layer.
    for f in (ROOT / "tests" / "cpp").glob("*.[ch]pp"):
        for inc in re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', f.read_text(), re.M):
            assert not inc.startswith(("pybind11", "Python")), f"{f.name} includes {inc}"
            if "/" in inc:
                assert inc.split("/")[0] in ("core", "backend", "runtime"), f"{f.name} includes {inc}"
