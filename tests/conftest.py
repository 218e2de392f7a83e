"""Shared fixtures for the hetensor test suite.

Every numeric test compares a decrypted result with a float64 numpy reference
and asserts a precision in bits: ``bits(got, ref) = -log2(max |got - ref|)``.
Contexts are session-scoped (key generation is the expensive part) and seeded
so that a failure can be replayed; tests that add keys build their own small
context instead of mutating the shared ones.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import os

# Encoded weight diagonals a context may keep (the default, a quarter of the free memory, is sized
# for models): the suite's many small contexts stay under its 3 GB peak.
os.environ.setdefault("HETENSOR_PLAINTEXT_BUDGET", str(256 << 20))

import hetensor as ht  # noqa: E402
from hetensor import _core, cuda  # noqa: E402
from hetensor import linalg as la  # noqa: E402

# Rotation steps that the shared toy context has keys for. Large steps
# (slots + 3, -slots - 1, ...) reuse these keys after reduction mod slots.
TOY_ROTATIONS = (1, 2, 3, 7, -1, -5, 100, 1000)
TOY_SEED = 20240601
OTHER_SEED = 987654321


def bits(got, ref) -> float:
    """Precision in bits of `got` against the float64 reference `ref`.

    -log2 of the maximum absolute error; +inf when they are equal. Shapes must
    agree exactly (a wrong shape is a failure, not a broadcast).
    """
    g = np.asarray(got)
    r = np.asarray(ref)
    assert g.shape == r.shape, f"shape {g.shape} != reference shape {r.shape}"
    if g.size == 0:
        return math.inf
    err = float(np.max(np.abs(g.astype(np.complex128) - r.astype(np.complex128))))
    assert math.isfinite(err), "result contains NaN or Inf"
    return math.inf if err == 0.0 else -math.log2(err)


def rel_bits(got, ref) -> float:
    """Precision in bits of `got` relative to the largest magnitude of the float64 reference `ref`.

    -log2(max |got - ref| / max |ref|); +inf when they are equal. For values of any scale
    (gradients, losses, model outputs); broadcasts as numpy does.
    """
    err = float(np.max(np.abs(np.asarray(got) - np.asarray(ref))))
    return math.inf if err == 0 else -math.log2(err / max(float(np.max(np.abs(ref))), 1e-300))


def padded_rows(x: np.ndarray, slots: int) -> np.ndarray:
    """The slot layout of `x`: row-major, zero-padded to whole rows of `slots`."""
    flat = np.asarray(x).reshape(-1)
    count = max(1, -(-flat.size // slots))
    rows = np.zeros(count * slots, dtype=flat.dtype if flat.size else np.float64)
    rows[: flat.size] = flat
    return rows.reshape(count, slots)


def rotated_reference(x: np.ndarray, k: int, slots: int) -> np.ndarray:
    """out[i] = in[(i + k) mod slots] over the full (zero-padded) slot vector of
    every ciphertext, cut back to the shape of `x`."""
    x = np.asarray(x)
    rows = padded_rows(x, slots)
    rolled = np.roll(rows, -k, axis=1)
    return rolled.reshape(-1)[: x.size].reshape(x.shape)


def linalg_context(seed: int, budget: int = 64 << 20, **options):
    """The body of a linalg test module's context fixture (``yield from linalg_context(seed)``): a
    toy-insecure context of its own seed whose cached weight diagonals are capped at ``budget``
    bytes (the default budget is sized for models) and dropped with it."""
    c = ht.Context.from_preset("toy-insecure", seed=seed, **options)
    la.set_plaintext_budget(c, budget)
    yield c
    la.clear_cache(c)


@pytest.fixture(scope="session")
def bits_of():
    """The `bits(got, ref)` helper as a fixture."""
    return bits


@pytest.fixture(scope="session")
def toy_ctx():
    """Seeded toy-insecure context (N = 2^12, 6 levels) with rotation and
    conjugation keys for the steps the tests use."""
    return ht.Context.from_preset("toy-insecure", rotations=TOY_ROTATIONS, seed=TOY_SEED, conjugation=True)


@pytest.fixture(scope="session")
def other_ctx():
    """A second, independent toy context (other keys) for mixing tests."""
    return ht.Context.from_preset("toy-insecure", rotations=[1], seed=OTHER_SEED)


@pytest.fixture(scope="session")
def rot1_ctx():
    """A toy context that has the rotation key for step 1 only."""
    return ht.Context.from_preset("toy-insecure", rotations=[1], seed=TOY_SEED + 1)


@pytest.fixture
def small_ctx():
    """A fresh, small context (N = 2^11, 2 levels) that a test may add keys to."""
    return ht.Context.from_params(log_n=11, levels=2, dnum=1, allow_insecure=True, seed=4242)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def restore_threads():
    """Puts the core's thread count back after a test that changes it."""
    before = ht.get_num_threads()
    yield before
    ht.set_num_threads(before)


@pytest.fixture
def one_thread(restore_threads):
    """One core thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")``), put back after.

    Polynomial evaluation and bootstrapping run hundreds of short parallel regions; on a shared
    2-core machine two OpenMP threads can wait on each other for a whole scheduler slice per region.
    """
    ht.set_num_threads(1)


@pytest.fixture(autouse=True, scope="module")
def _release_memory_after_module():
    """Give back what a test module freed before the next one starts.

    A module's contexts, keys and encoded weights die with its fixtures; the
    core keeps their freed buffers for reuse (up to 1 GiB) and glibc keeps the
    heap pages. Without this the suite's resident memory grew module by module.
    """
    yield
    import gc

    gc.collect()
    ht.memory.release_cached()


@pytest.fixture(autouse=True)
def _release_memory_after_heavy_tests():
    """After a test that grew resident memory by more than 64 MiB, collect and release at once.

    Contexts caught in reference cycles (a model's last run holding its tensors, which hold the
    context) otherwise wait for the module's end, and a module of tests that each make a
    bootstrapping context stacked them up (test_nn_compile: +2 GB).
    """
    before = _rss_kib("VmRSS")
    yield
    if _rss_kib("VmRSS") - before > 64 * 1024:
        import gc

        gc.collect()
        ht.memory.release_cached()


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # HETENSOR_TEST_RSS_LOG=path appends "test  rss_after_kib  peak_kib" per test: the suite's
    # 3 GB peak budget is tracked with it (which test raised the high-water mark, what stays resident).
    yield
    log = os.environ.get("HETENSOR_TEST_RSS_LOG")
    if log and os.path.exists("/proc/self/status"):
        with open(log, "a") as out:
            out.write(f"{item.nodeid}\t{_rss_kib('VmRSS')}\t{_rss_kib('VmHWM')}\n")


# Device-resident tests run on "cpu" (the CPU backend's own memory) and on cuda:0 where one is usable.
DEVICES = ["cpu", pytest.param("cuda:0", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not cuda.is_available(), reason="no usable CUDA device")])]


def encrypted_pair(ctx, rng, rows: int):
    """(x, y, X, Y): two (rows, slots) arrays uniform in [-1, 1] from `rng` and their encryptions under `ctx`."""
    x = rng.uniform(-1, 1, (rows, ctx.slots))
    y = rng.uniform(-1, 1, (rows, ctx.slots))
    return x, y, ctx.encrypt(x), ctx.encrypt(y)


def resident(x: ht.CipherTensor, device: str) -> ht.CipherTensor:
    """x with its residues in the memory of `device`'s backend (for "cpu" too)."""
    out = x._like(_core.device_upload(x._ct, device))
    out._range = x._range
    return out
