"""Ring layer: NTT-friendly primes, primitive roots and the negacyclic NTT.

The references are Python big-int computations: a naive O(N^2) negacyclic
convolution, direct polynomial evaluation at the odd powers of psi, and a
deterministic Miller-Rabin test.
"""

from __future__ import annotations

import numpy as np
import pytest

from hetensor import _core

RING_DEGREES = (64, 128, 256, 512, 1024)
PRIME_BITS = (40, 47, 52, 59, 61)


# -- Python references --------------------------------------------------------------


def py_is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (first 13 prime bases)."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def naive_negacyclic(a, b, q):
    """a * b mod (X^N + 1, q) with Python ints, O(N^2)."""
    n = len(a)
    out = [0] * n
    for i, ai in enumerate(a):
        if ai == 0:
            continue
        for j in range(n):
            k = i + j
            if k < n:
                out[k] += ai * b[j]
            else:
                out[k - n] -= ai * b[j]
    return [v % q for v in out]


def py_bit_reverse(x: int, bits: int) -> int:
    return int(format(x, f"0{bits}b")[::-1], 2) if bits else 0


def random_residues(rng, n, q):
    # q < 2^62 so uint64 integers() is exact
    return rng.integers(0, q, size=n, dtype=np.uint64)


@pytest.fixture(scope="module")
def primes():
    """{(bits, n): q} for every ring degree and prime size used here."""
    return {(b, n): int(_core.ntt_prime(b, n)) for n in RING_DEGREES for b in PRIME_BITS}


# -- primes and roots ------------------------------------------------------------------


@pytest.mark.parametrize("n", RING_DEGREES + (4096, 65536))
@pytest.mark.parametrize("bits", PRIME_BITS)
def test_ntt_prime_is_prime_and_one_mod_2n(bits, n):
    q = int(_core.ntt_prime(bits, n))
    assert py_is_prime(q), f"ntt_prime({bits}, {n}) = {q} is not prime"
    assert q % (2 * n) == 1, f"{q} is not 1 mod 2N = {2 * n}"
    assert q.bit_length() == bits, f"{q} has {q.bit_length()} bits, not {bits}"
    assert q < 2**61 + 1  # headroom for lazy reduction (primes below 2^61)


@pytest.mark.parametrize("n", RING_DEGREES)
@pytest.mark.parametrize("bits", PRIME_BITS)
def test_primitive_2n_root(bits, n, primes):
    q = primes[(bits, n)]
    psi = int(_core.primitive_2n_root(q, n))
    assert 1 < psi < q
    # psi^N = -1 makes the order exactly 2N (2N is a power of two).
    assert pow(psi, n, q) == q - 1
    assert pow(psi, 2 * n, q) == 1


def test_primitive_2n_root_rejects_prime_not_one_mod_2n():
    q = int(_core.ntt_prime(40, 1024))
    # q = 1 mod 2048 but, being found for N = 1024, it is 1 mod 2^20 only by chance
    bad_n = 1 << 30
    assert (q - 1) % (2 * bad_n) != 0
    with pytest.raises(ValueError):
        _core.primitive_2n_root(q, bad_n)


KNOWN_COMPOSITES = [
    0, 1, 4, 561, 1105, 1729, 2465, 2821, 6601,  # Carmichael numbers
    2047, 3277, 4033, 4681, 8321,  # strong pseudoprimes to base 2
    3215031751,  # strong pseudoprime to bases 2, 3, 5, 7
    3825123056546413051,  # strong pseudoprime to bases 2..23
    (2**31 - 1) ** 2,
    (2**61 - 1) * 3,
    1152921504606846975,  # 2^60 - 1
]
KNOWN_PRIMES = [2, 3, 5, 97, 65537, 2**31 - 1, 2**61 - 1, 1152921504606830593, 18446744073709551557]


@pytest.mark.parametrize("n", KNOWN_COMPOSITES + KNOWN_PRIMES)
def test_is_prime_known_values(n):
    assert bool(_core.is_prime(n)) == py_is_prime(n) == (n in KNOWN_PRIMES)


def test_is_prime_agrees_with_reference_on_random_odd_numbers():
    rng = np.random.default_rng(7)
    for bits in (20, 33, 45, 61, 63):
        for v in rng.integers(1 << (bits - 1), 1 << bits, size=200, dtype=np.uint64):
            v = int(v) | 1
            assert bool(_core.is_prime(v)) == py_is_prime(v), v


@pytest.mark.parametrize("bits", [0, 1, 5, 10, 16])
def test_bit_reverse(bits):
    for x in range(min(1 << bits, 1024)):
        assert int(_core.bit_reverse(x, bits)) == py_bit_reverse(x, bits)


# -- the transform ---------------------------------------------------------------------


@pytest.mark.parametrize("n", RING_DEGREES)
@pytest.mark.parametrize("bits", PRIME_BITS)
def test_ntt_round_trip_is_exact(bits, n, primes):
    q = primes[(bits, n)]
    rng = np.random.default_rng(bits * 1000 + n)
    for a in (random_residues(rng, n, q), np.zeros(n, np.uint64), np.full(n, q - 1, np.uint64)):
        fa = _core.ntt_forward(a, q)
        assert fa.dtype == np.uint64 and fa.shape == (n,)
        assert int(fa.max()) < q, "forward output must be fully reduced to [0, q)"
        back = _core.ntt_inverse(fa, q)
        assert back.dtype == np.uint64
        np.testing.assert_array_equal(back, a)
    # the input array is not modified in place
    a = random_residues(rng, n, q)
    a_copy = a.copy()
    _core.ntt_forward(a, q)
    np.testing.assert_array_equal(a, a_copy)


@pytest.mark.parametrize("n", RING_DEGREES)
@pytest.mark.parametrize("bits", PRIME_BITS)
def test_ntt_product_equals_naive_negacyclic_convolution(bits, n, primes):
    q = primes[(bits, n)]
    rng = np.random.default_rng(bits * 7919 + n)
    a = random_residues(rng, n, q)
    b = random_residues(rng, n, q)
    fa = _core.ntt_forward(a, q)
    fb = _core.ntt_forward(b, q)
    prod = np.array([(int(x) * int(y)) % q for x, y in zip(fa, fb)], dtype=np.uint64)
    got = [int(v) for v in _core.ntt_inverse(prod, q)]
    ref = naive_negacyclic([int(v) for v in a], [int(v) for v in b], q)
    assert got == ref


@pytest.mark.parametrize("n", (64, 256))
@pytest.mark.parametrize("bits", (40, 61))
def test_ntt_multiplying_by_x_is_negacyclic_shift(bits, n, primes):
    q = primes[(bits, n)]
    rng = np.random.default_rng(3)
    a = random_residues(rng, n, q)
    x = np.zeros(n, np.uint64)
    x[1] = 1
    fa, fx = _core.ntt_forward(a, q), _core.ntt_forward(x, q)
    prod = np.array([(int(u) * int(v)) % q for u, v in zip(fa, fx)], dtype=np.uint64)
    got = [int(v) for v in _core.ntt_inverse(prod, q)]
    ai = [int(v) for v in a]
    ref = [(q - ai[-1]) % q] + ai[:-1]  # X * a(X) mod X^N + 1
    assert got == ref


@pytest.mark.parametrize("n", (64, 128, 512))
@pytest.mark.parametrize("bits", (40, 52, 61))
def test_ntt_evaluates_at_odd_powers_of_psi_in_bit_reversed_order(bits, n, primes):
    """Golden check (D12): output k is a(psi^(2*bitrev(k) + 1)) mod q."""
    q = primes[(bits, n)]
    psi = int(_core.primitive_2n_root(q, n))
    log_n = n.bit_length() - 1
    rng = np.random.default_rng(bits + n)
    a = [int(v) for v in random_residues(rng, n, q)]
    fa = [int(v) for v in _core.ntt_forward(np.array(a, dtype=np.uint64), q)]

    def evaluate(x):
        acc = 0
        for c in reversed(a):  # Horner
            acc = (acc * x + c) % q
        return acc

    ref = [evaluate(pow(psi, 2 * py_bit_reverse(k, log_n) + 1, q)) for k in range(n)]
    assert fa == ref


def test_ntt_rejects_bad_input():
    n = 64
    q = int(_core.ntt_prime(40, n))
    with pytest.raises(ValueError):
        _core.ntt_forward(np.full(n, q, dtype=np.uint64), q)  # residue not < q
    with pytest.raises(ValueError):
        _core.ntt_inverse(np.full(n, q + 5, dtype=np.uint64), q)
    with pytest.raises(ValueError):
        _core.ntt_forward(np.zeros((2, n), dtype=np.uint64), q)  # not 1-D
    with pytest.raises(ValueError):
        _core.ntt_forward(np.zeros(48, dtype=np.uint64), q)  # not a power of two
