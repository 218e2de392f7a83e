"""Runs the atheris harness (tests/fuzz/fuzz_load.py) for a bounded number of
inputs in a child process: a crash or an unexpected exception fails the test.
The long run (``pytest -m slow``, or the script itself with
-max_total_time=...) is the CI job; atheris comes with ``pip install .[fuzz]``."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys

import pytest

HARNESS = os.path.join(os.path.dirname(__file__), "fuzz", "fuzz_load.py")


def _fuzz(*args: str, timeout: int) -> str:
    pytest.importorskip("atheris")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # libFuzzer's memory guard reads the child's peak RSS, which on Linux starts
    # from this (parent) process's peak at the fork: allow 2 GiB above it
    limit_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 2048
    out = subprocess.run([sys.executable, HARNESS, f"-rss_limit_mb={limit_mb}", *args], capture_output=True, text=True, timeout=timeout, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    runs = re.search(r"Done (\d+)", log)
    assert runs and int(runs.group(1)) > 0, log[-2000:]
    return log


def test_fuzz_smoke():
    _fuzz("-atheris_runs=3000", "-seed=1", timeout=300)


@pytest.mark.slow
def test_fuzz_ten_minutes():
    _fuzz("-max_total_time=600", timeout=900)
