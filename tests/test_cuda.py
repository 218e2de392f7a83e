"""CUDA backend: the GPU launchers run the same kernel bodies as the CPU, so
their results must agree bit for bit with the CPU NTT and with exact
references for element-wise arithmetic and the NTT-domain automorphism.

The `gpu` tests skip cleanly without a usable device. The tests at the top run
everywhere: the module imports, and the CUDA entry points report the absence
of a backend or device with an exception, never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetensor
from hetensor import _core

HAVE_GPU = hetensor.cuda_available()
gpu = pytest.mark.skipif(not HAVE_GPU, reason="no usable CUDA device (hetensor.cuda_available() is False)")

RING_DEGREES = (2, 16, 1024, 4096)
PRIME_BITS = (40, 50, 60)


# -- everywhere ---------------------------------------------------------------------


def test_cuda_flags_are_bools():
    assert isinstance(_core.cuda_compiled, bool)
    assert isinstance(hetensor.cuda_available(), bool)
    count = _core.cuda_device_count()
    assert isinstance(count, int) and count >= 0
    if not _core.cuda_compiled:
        assert hetensor.cuda_available() is False
        assert count == 0


@pytest.mark.skipif(_core.cuda_compiled, reason="the CUDA backend is compiled in")
def test_entry_points_without_backend_say_how_to_rebuild():
    a = np.zeros((1, 16), dtype=np.uint64)
    with pytest.raises(RuntimeError, match="HETENSOR_CUDA=ON"):
        _core.cuda_ntt_forward(a, [_core.ntt_prime(40, 16)])
    with pytest.raises(RuntimeError, match="without the CUDA backend"):
        _core.cuda_automorphism(a, 5)


@pytest.mark.skipif(not _core.cuda_compiled or HAVE_GPU, reason="needs the CUDA backend without a usable device")
def test_entry_points_without_device_raise():
    q = _core.ntt_prime(40, 16)
    a = np.zeros((1, 16), dtype=np.uint64)
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        _core.cuda_ntt_forward(a, [q])
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        _core.cuda_elementwise("mul", a, a, [q])
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        _core.cuda_automorphism(a, 5)


@pytest.mark.skipif(not _core.cuda_compiled, reason="the CUDA backend is not compiled in")
def test_bad_arguments_are_value_errors():
    q = _core.ntt_prime(40, 16)
    a = np.zeros((2, 16), dtype=np.uint64)
    with pytest.raises(ValueError, match="primes"):
        _core.cuda_ntt_forward(a, [q])
    with pytest.raises(ValueError, match="2-D"):
        _core.cuda_ntt_inverse(a[0], [q])
    with pytest.raises(ValueError, match="< q"):
        _core.cuda_ntt_forward(np.full((1, 16), q, dtype=np.uint64), [q])
    with pytest.raises(ValueError, match="op must be"):
        _core.cuda_elementwise("div", a, a, [q, q])
    with pytest.raises(ValueError, match="galois_elt"):
        _core.cuda_automorphism(a, 4)


# -- references ---------------------------------------------------------------------


def primes_for(n: int) -> list[int]:
    return [_core.ntt_prime(bits, n) for bits in PRIME_BITS]


def random_residues(rng: np.random.Generator, primes: list[int], n: int) -> np.ndarray:
    return np.stack([rng.integers(0, q, size=n, dtype=np.uint64) for q in primes])


def cpu_rows(fn, a: np.ndarray, primes: list[int]) -> np.ndarray:
    return np.stack([fn(a[i], q) for i, q in enumerate(primes)])


def reference_mod(op: str, a: np.ndarray, b: np.ndarray, primes: list[int]) -> np.ndarray:
    """Exact element-wise reference in Python integers."""
    q = np.array(primes, dtype=object)[:, None]
    x, y = a.astype(object), b.astype(object)
    r = {"add": x + y, "sub": x - y, "mul": x * y}[op] % q
    return r.astype(np.uint64)


def ntt_permutation(galois_elt: int, n: int) -> np.ndarray:
    """perm[k]: NTT index k holds the evaluation at psi^(2*bitrev(k)+1), and
    X -> X^g sends it to index bitrev(((2*bitrev(k)+1)*g mod 2N - 1) / 2)."""
    log_n = n.bit_length() - 1
    br = np.array([_core.bit_reverse(k, log_n) for k in range(n)], dtype=np.int64)
    e = (2 * br + 1) * galois_elt % (2 * n)
    return br[(e - 1) // 2]


def coeff_automorphism(a: np.ndarray, galois_elt: int, q: int) -> np.ndarray:
    """X -> X^g on coefficients of Z_q[X]/(X^N + 1): X^i -> +-X^(i*g mod N)."""
    n = a.size
    out = np.zeros(n, dtype=object)
    for i, c in enumerate(a.tolist()):
        j = i * galois_elt % (2 * n)
        if j < n:
            out[j] = (out[j] + c) % q
        else:
            out[j - n] = (out[j - n] - c) % q
    return out.astype(np.uint64)


# -- on the GPU ---------------------------------------------------------------------


@pytest.mark.gpu
@gpu
def test_device_is_described():
    assert _core.cuda_device_count() >= 1
    assert isinstance(_core.cuda_device_name(0), str) and _core.cuda_device_name(0)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("n", RING_DEGREES)
def test_ntt_matches_cpu(direction, n, rng):
    primes = primes_for(n)
    a = random_residues(rng, primes, n)
    got = getattr(_core, f"cuda_ntt_{direction}")(a, primes)
    assert got.dtype == np.uint64 and got.shape == a.shape
    np.testing.assert_array_equal(got, cpu_rows(getattr(_core, f"ntt_{direction}"), a, primes))


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("n", RING_DEGREES)
def test_ntt_round_trip_is_identity(n, rng):
    primes = primes_for(n)
    a = random_residues(rng, primes, n)
    np.testing.assert_array_equal(_core.cuda_ntt_inverse(_core.cuda_ntt_forward(a, primes), primes), a)


@pytest.mark.gpu
@gpu
def test_ntt_extreme_residues_match_cpu():
    n = 1024
    primes = primes_for(n)
    a = np.stack([np.full(n, q - 1, dtype=np.uint64) for q in primes])
    a[:, ::2] = 0
    np.testing.assert_array_equal(_core.cuda_ntt_forward(a, primes), cpu_rows(_core.ntt_forward, a, primes))
    np.testing.assert_array_equal(_core.cuda_ntt_inverse(a, primes), cpu_rows(_core.ntt_inverse, a, primes))


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("n", (16, 4096))
def test_elementwise_is_exact(op, n, rng):
    primes = primes_for(n)
    a = random_residues(rng, primes, n)
    b = random_residues(rng, primes, n)
    top = np.array([q - 1 for q in primes], dtype=np.uint64)
    a[:, 0], b[:, 0] = top, top  # largest operands
    a[:, 1], b[:, 1] = 0, top  # wrap-around of sub
    a[:, 2], b[:, 2] = top, 0
    got = _core.cuda_elementwise(op, a, b, primes)
    np.testing.assert_array_equal(got, reference_mod(op, a, b, primes))


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("n", (16, 1024))
def test_automorphism_matches_permutation(n, rng):
    primes = primes_for(n)
    a = random_residues(rng, primes, n)
    for g in (5, 25 % (2 * n), pow(5, n // 2 - 1, 2 * n), 2 * n - 1):
        got = _core.cuda_automorphism(a, g)
        np.testing.assert_array_equal(got, a[:, ntt_permutation(g, n)])


@pytest.mark.gpu
@gpu
def test_automorphism_commutes_with_ntt(rng):
    n = 64
    primes = primes_for(n)
    coeffs = random_residues(rng, primes, n)
    for g in (5, 2 * n - 1):
        want = np.stack(
            [_core.ntt_forward(coeff_automorphism(coeffs[i], g, q), q) for i, q in enumerate(primes)]
        )
        got = _core.cuda_automorphism(_core.cuda_ntt_forward(coeffs, primes), g)
        np.testing.assert_array_equal(got, want)
