"""hetensor.memory: the core's cache of freed ring buffers, and giving it back."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

MIB = 1 << 20


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


@pytest.fixture
def default_cache():
    previous = ht.memory.set_cache_limit(1 << 30)
    yield
    ht.memory.set_cache_limit(previous)
    ht.memory.release_cached()


def _big_sum(ctx, rng):
    # 256 ciphertexts of N = 2^12 with 7 limbs: 117 MB per tensor, one allocation each.
    x = rng.uniform(-1, 1, ctx.slots * 256)
    ct = ctx.encrypt(x)
    y = ct + ct
    assert bits(ctx.decrypt(y), 2 * x) > 20
    return ct, y


def test_freed_buffers_are_cached_then_released(toy_ctx, rng, default_cache):
    ht.memory.release_cached()
    ct, y = _big_sum(toy_ctx, rng)
    del ct, y
    gc.collect()
    cached = ht.memory.cached_bytes()
    assert cached >= 200 * MIB, f"only {cached / MIB:.0f} MiB cached after freeing two 117 MB tensors"
    before = _rss_bytes()
    ht.memory.release_cached()
    assert ht.memory.cached_bytes() == 0
    dropped = before - _rss_bytes()
    assert dropped >= 200 * MIB, f"resident memory dropped by only {dropped / MIB:.0f} MiB"


def test_cache_limit_zero_keeps_nothing_and_results_stay_exact(toy_ctx, rng, default_cache):
    ht.memory.release_cached()
    assert ht.memory.set_cache_limit(0) == 1 << 30
    assert ht.memory.cache_limit() == 0
    ct, y = _big_sum(toy_ctx, rng)  # precision asserted with no buffer reuse at all
    del ct, y
    gc.collect()
    assert ht.memory.cached_bytes() == 0


def test_lowering_the_limit_frees_down_to_it(toy_ctx, rng, default_cache):
    ht.memory.release_cached()
    ct, y = _big_sum(toy_ctx, rng)
    del ct, y
    gc.collect()
    assert ht.memory.cached_bytes() > 64 * MIB
    ht.memory.set_cache_limit(64 * MIB)
    assert ht.memory.cached_bytes() <= 64 * MIB


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError)])
def test_bad_cache_limits_are_refused(bad, error, default_cache):
    with pytest.raises(error, match="set_cache_limit"):
        ht.memory.set_cache_limit(bad)
    assert ht.memory.cache_limit() == 1 << 30


def test_capped_lowers_the_cap_for_a_block_and_restores_it(default_cache):
    with ht.memory.capped(64 * MIB):
        assert ht.memory.cache_limit() == 64 * MIB
        with ht.memory.capped(1 * MIB):  # nested: the first cap holds
            assert ht.memory.cache_limit() == 64 * MIB
        assert ht.memory.cache_limit() == 64 * MIB
    assert ht.memory.cache_limit() == 1 << 30
    ht.memory.set_cache_limit(16 * MIB)
    with ht.memory.capped(64 * MIB):  # never raises a lower cap
        assert ht.memory.cache_limit() == 16 * MIB
    assert ht.memory.cache_limit() == 16 * MIB
    with pytest.raises(ValueError, match="byte count >= 0"):
        with ht.memory.capped(-1):
            pass
    assert ht.memory.cache_limit() == 16 * MIB


def test_a_bootstrap_runs_under_the_boot_cap_and_gives_the_cap_back(default_cache):
    from hetensor import boot

    ctx = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=44)
    seen = []
    planner = ctx._bootstrapper
    real = planner.executor(True)
    planner._executors[True] = type("Probe", (), {  # the executor, seeing the cap while it runs
        "__getattr__": lambda self, name: (lambda *a: seen.append(ht.memory.cache_limit()) or getattr(real, name)(*a))
    })()
    x = np.linspace(-1, 1, ctx.slots)
    out = ctx.encrypt(x).bootstrap()
    assert seen == [boot.BOOT_CACHE_LIMIT] and ht.memory.cache_limit() == 1 << 30
    assert bits(ctx.decrypt(out), x) >= 28
