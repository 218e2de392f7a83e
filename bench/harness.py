"""Shared harness: pytest-benchmark over the same ops as ``python -m hetensor.bench`` (not in the default test run).

Run:  pytest bench/ --benchmark-group-by=group
Preset and peers come from the environment (defaults: n14, every installed peer):
  HETENSOR_BENCH_PRESET=n16 HETENSOR_BENCH_THREADS=1 HETENSOR_BENCH_PEERS=tenseal,desilofhe,orion
"""

from __future__ import annotations

import os
from typing import Dict, List

import pytest

from hetensor.bench.hetensor_ops import HetensorAdapter
from hetensor.bench.peers import known_peers, make_adapter
from hetensor.bench.peers.base import Adapter, Session
from hetensor.bench.spec import preset_spec
from hetensor.bench.timing import Bench, Unavailable

PRESET = os.environ.get("HETENSOR_BENCH_PRESET", "n14")
THREADS = int(os.environ.get("HETENSOR_BENCH_THREADS", "1"))
ROUNDS = int(os.environ.get("HETENSOR_BENCH_ROUNDS", "5"))
_PEERS = os.environ.get("HETENSOR_BENCH_PEERS", ",".join(known_peers()))
PEERS: List[str] = [p for p in _PEERS.split(",") if p and p != "none"]
LIBS: List[str] = ["hetensor"] + PEERS

_adapters: Dict[str, Adapter] = {}
_sessions: Dict[str, Session] = {}


def session_for(lib: str) -> Session:
    """The library set up once per test session for PRESET and THREADS (skips when it cannot be)."""
    if lib in _sessions:
        return _sessions[lib]
    adapter = _adapters.get(lib) or (HetensorAdapter() if lib == "hetensor" else make_adapter(lib))
    _adapters[lib] = adapter
    probe = adapter.probe()
    if probe.status != "ok":
        pytest.skip(f"{lib}: {probe.status}: {probe.reason}")
    _sessions[lib] = adapter.open(preset_spec(PRESET), THREADS)
    return _sessions[lib]


def run_op(benchmark, lib: str, op: str) -> None:
    """Benchmark one op of one library with pytest-benchmark's pedantic mode (setup untimed)."""
    bench = session_for(lib).bench(op)
    if isinstance(bench, Unavailable):
        pytest.skip(f"{lib} cannot express {op}: {bench.reason}")
    assert isinstance(bench, Bench)
    benchmark.group = f"{PRESET} t={THREADS} {op}"
    benchmark.extra_info.update({"library": lib, "op": op, "preset": PRESET, "threads": THREADS,
                                 "divisor": bench.divisor, "note": bench.note})
    last: list = []

    def setup():
        if len(last) == 2 and bench.cleanup is not None:
            bench.cleanup(*last)
        last.clear()
        arg = bench.setup()
        last.append(arg)
        return (arg,), {}

    def target(arg):
        out = bench.run(arg)
        last.append(out)
        return out

    benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    if len(last) == 2 and bench.cleanup is not None:
        bench.cleanup(*last)
    if bench.finalize is not None:
        bench.finalize()
