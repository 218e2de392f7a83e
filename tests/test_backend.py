"""The backend seam (cpp/backend/backend.hpp) op by op, through _core.backend_*:
the CPU backend against exact references (Python integers / the ring
functions), and every backend against the CPU backend bit for bit. Devices:
"cpu" always, "cuda:0" when a GPU is present (skipped cleanly otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

from hetensor import _core, cuda

DEVICES = ["cpu", pytest.param("cuda:0", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not cuda.is_available(), reason="no usable CUDA device")])]
N = 64


@pytest.fixture(scope="module")
def primes():
    return [_core.ntt_prime(b, N) for b in (40, 50, 60)]


def residues(rng, primes, n=N):
    return np.stack([rng.integers(0, q, n, dtype=np.uint64) for q in primes])


def negacyclic(a, b, q):
    """a * b in Z_q[X]/(X^n + 1), exact integers."""
    n = len(a)
    out = [0] * n
    for i, x in enumerate(int(v) for v in a):
        for j, y in enumerate(int(v) for v in b):
            k, s = (i + j) % n, 1 if i + j < n else -1
            out[k] = (out[k] + s * x * y) % q
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_ntt_matches_the_ring_ntt_and_multiplies(device, rng, primes):
    a, b = residues(rng, primes), residues(rng, primes)
    fa = _core.backend_ntt(device, a, primes)
    for i, q in enumerate(primes):
        assert np.array_equal(fa[i], _core.ntt_forward(a[i], q))
    assert np.array_equal(_core.backend_ntt(device, fa, primes, inverse=True), a)
    # the NTT diagonalizes negacyclic products: pointwise mul then inverse is a * b
    fb = _core.backend_ntt(device, b, primes)
    prod = _core.backend_ntt(device, _core.backend_elementwise(device, "mul", fa, fb, primes), primes, inverse=True)
    for i, q in enumerate(primes):
        assert [int(v) for v in prod[i]] == negacyclic(a[i], b[i], q)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_elementwise_exact(device, op, rng, primes):
    a, b = residues(rng, primes), residues(rng, primes)
    got = _core.backend_elementwise(device, op, a, b, primes)
    f = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y}[op]
    for i, q in enumerate(primes):
        assert [int(v) for v in got[i]] == [f(int(x), int(y)) % q for x, y in zip(a[i], b[i])]


@pytest.mark.parametrize("device", DEVICES)
def test_automorphism_is_x_to_x_power_g(device, rng, primes):
    a = residues(rng, primes)
    g = 5
    got = _core.backend_ntt(device, _core.backend_automorphism(device, _core.backend_ntt(device, a, primes), primes, g),
                            primes, inverse=True)
    for i, q in enumerate(primes):  # coefficient j moves to j g mod 2n, with a sign past n
        want = [0] * N
        for j, v in enumerate(int(x) for x in a[i]):
            k = j * g % (2 * N)
            want[k % N] = (want[k % N] + (v if k < N else -v)) % q
        assert [int(v) for v in got[i]] == want


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("exact", [False, True])
def test_basis_convert(device, exact, rng, primes):
    src, dst = primes[:2], [_core.ntt_prime(45, N), primes[2]]
    a = residues(rng, src)
    got = _core.backend_basis_convert(device, a, src, dst, exact=exact)
    big = src[0] * src[1]
    for k in range(N):  # CRT value x in [0, B); exact: centered, fast: x + e B with 0 <= e < len(src)
        x = (int(a[0, k]) * pow(src[1], -1, src[0]) * src[1] + int(a[1, k]) * pow(src[0], -1, src[1]) * src[0]) % big
        centered = x - big if x > big // 2 else x
        for j, c in enumerate(dst):
            if exact:
                assert int(got[j, k]) == centered % c
            else:
                assert any(int(got[j, k]) == (x + e * big) % c for e in range(len(src)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("n", [8, 256])
def test_basis_convert_modup_shape_exact(device, exact, n, rng):
    """ModUp's shape at n16-boot (a digit of six 61-bit primes to 45-61-bit
    primes), against Python integers: the fast result is exactly
    sum_i y_i (B / b_i) mod c (y_i = x_i (B / b_i)^-1 mod b_i), the exact one
    the centered CRT value. Largest residues included (the 128-bit carries);
    n = 8 runs the 4-wide tail, n = 256 the CPU's 16-wide blocks."""
    src = [_core.ntt_prime(61, n)]
    while len(src) < 6:  # distinct 61-bit NTT primes below the first
        q = src[-1] - 2 * n
        while not _core.is_prime(q):
            q -= 2 * n
        src.append(q)
    dst = [_core.ntt_prime(b, n) for b in (45, 50, 55, 59, 60)]
    a = residues(rng, src, n)
    a[:, 0] = [q - 1 for q in src]
    a[:, 1] = 0
    got = _core.backend_basis_convert(device, a, src, dst, exact=exact)
    big = 1
    for q in src:
        big *= q
    hats = [big // q for q in src]
    for k in range(n):
        ys = [int(a[i, k]) * pow(h, -1, q) % q for i, (h, q) in enumerate(zip(hats, src))]
        fast = sum(y * h for y, h in zip(ys, hats))
        x = fast % big
        want = (x - big if x > big // 2 else x) if exact else fast
        assert [int(got[j, k]) for j in range(len(dst))] == [want % c for c in dst]


@pytest.mark.parametrize("device", DEVICES)
def test_key_switch_dot_and_sub_mul_const(device, rng, primes):
    q = primes[2]
    d, kb, ka = (residues(rng, [q] * 5) for _ in range(3))
    o0, o1 = _core.backend_key_switch_dot(device, d, kb, ka, q)
    for k in range(N):
        assert int(o0[k]) == sum(int(d[j, k]) * int(kb[j, k]) for j in range(5)) % q
        assert int(o1[k]) == sum(int(d[j, k]) * int(ka[j, k]) for j in range(5)) % q
    a, b = residues(rng, primes), residues(rng, primes)
    w = [int(rng.integers(1, p)) for p in primes]
    got = _core.backend_sub_mul_const(device, a, b, w, primes)
    for i, p in enumerate(primes):
        assert [int(v) for v in got[i]] == [(int(x) - int(y)) * w[i] % p for x, y in zip(a[i], b[i])]


@pytest.mark.parametrize("terms", [1, 2, 3, 4, 6, 7, 8, 9, 32])
def test_key_switch_dot_every_term_count_on_60_bit_primes(terms, rng, primes):
    """The CPU's fixed-count paths (1..8 terms) and the general one (more), at
    the largest residues (q - 1 in every third row) and random ones."""
    q = primes[2]
    d, kb, ka = (residues(rng, [q] * terms) for _ in range(3))
    for a in (d, kb, ka):
        a[::3] = q - 1
    o0, o1 = _core.backend_key_switch_dot("cpu", d, kb, ka, q)
    for k in range(0, N, 7):
        assert int(o0[k]) == sum(int(d[j, k]) * int(kb[j, k]) for j in range(terms)) % q
        assert int(o1[k]) == sum(int(d[j, k]) * int(ka[j, k]) for j in range(terms)) % q


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("galois_elt", [0, 5, 2 * N - 1])
def test_key_switch_inner_over_limbs_through_a_permutation(device, galois_elt, rng, primes):
    terms = 3
    rows = [q for q in primes for _ in range(terms)]
    d, kb, ka = (residues(rng, rows) for _ in range(3))
    o0, o1 = _core.backend_key_switch_inner(device, d, kb, ka, primes, terms, galois_elt)
    # the permuted digits are the backend's own automorphism of them
    dp = _core.backend_automorphism(device, d, rows, galois_elt) if galois_elt else d
    for i, q in enumerate(primes):
        for k in range(N):
            t = range(i * terms, (i + 1) * terms)
            assert int(o0[i, k]) == sum(int(dp[r, k]) * int(kb[r, k]) for r in t) % q
            assert int(o1[i, k]) == sum(int(dp[r, k]) * int(ka[r, k]) for r in t) % q


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("accumulate", [False, True])
def test_ntt_sub_mul_const_is_the_mod_down_tail(device, accumulate, rng, primes):
    out, x, conv = (residues(rng, primes) for _ in range(3))
    w = [int(rng.integers(1, p)) for p in primes]
    got, conv_ntt = _core.backend_ntt_sub_mul_const(device, out, x, conv, w, primes, accumulate)
    for i, q in enumerate(primes):
        c = _core.ntt_forward(conv[i], q)
        assert np.array_equal(conv_ntt[i], c)
        want = [((int(o) if accumulate else 0) + (int(a) - int(b)) * w[i]) % q for o, a, b in zip(out[i], x[i], c)]
        assert [int(v) for v in got[i]] == want


@pytest.mark.parametrize("device", DEVICES)
def test_mul_const_add_and_add_const(device, rng, primes):
    out, a = residues(rng, primes), residues(rng, primes)
    w = [int(rng.integers(0, p)) for p in primes]
    got = _core.backend_mul_const_add(device, out, a, w, primes)
    added = _core.backend_add_const(device, a, w, primes)
    for i, q in enumerate(primes):
        assert [int(v) for v in got[i]] == [(int(o) + int(x) * w[i]) % q for o, x in zip(out[i], a[i])]
        assert [int(v) for v in added[i]] == [(int(x) + w[i]) % q for x in a[i]]
    with pytest.raises(ValueError, match="constants must be < q"):
        _core.backend_add_const(device, a, [p for p in primes], primes)
    with pytest.raises(ValueError, match="one constant per limb"):
        _core.backend_mul_const_add(device, out, a, w[:2], primes)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.is_available(), reason="no usable CUDA device")
def test_cuda_backend_bit_identical_to_cpu_at_n16(rng):
    n = 1 << 16
    primes = [_core.ntt_prime(b, n) for b in (50, 55, 60, 60)]
    a, b = residues(rng, primes, n), residues(rng, primes, n)
    for inverse in (False, True):
        assert np.array_equal(_core.backend_ntt("cuda:0", a, primes, inverse),
                              _core.backend_ntt("cpu", a, primes, inverse))
    for op in ("add", "sub", "mul"):
        assert np.array_equal(_core.backend_elementwise("cuda:0", op, a, b, primes),
                              _core.backend_elementwise("cpu", op, a, b, primes))
    assert np.array_equal(_core.backend_automorphism("cuda:0", a, primes, 25),
                          _core.backend_automorphism("cpu", a, primes, 25))
    for exact in (False, True):
        assert np.array_equal(_core.backend_basis_convert("cuda:0", a[:3], primes[:3], primes[3:], exact),
                              _core.backend_basis_convert("cpu", a[:3], primes[:3], primes[3:], exact))
    got = _core.backend_key_switch_dot("cuda:0", a[:1], b[:1], a[:1], primes[0])
    want = _core.backend_key_switch_dot("cpu", a[:1], b[:1], a[:1], primes[0])
    assert all(np.array_equal(x, y) for x, y in zip(got, want))
    rows = [primes[i // 2] for i in range(4)]  # two limbs, two digits each
    d, kb = residues(rng, rows, n), residues(rng, rows, n)
    for g in (0, 25):
        got = _core.backend_key_switch_inner("cuda:0", d, kb, d, primes[:2], 2, g)
        want = _core.backend_key_switch_inner("cpu", d, kb, d, primes[:2], 2, g)
        assert all(np.array_equal(x, y) for x, y in zip(got, want))
    for acc in (False, True):
        got = _core.backend_ntt_sub_mul_const("cuda:0", a, b, a, [3, 5, 7, 11], primes, acc)
        want = _core.backend_ntt_sub_mul_const("cpu", a, b, a, [3, 5, 7, 11], primes, acc)
        assert all(np.array_equal(x, y) for x, y in zip(got, want))
    assert np.array_equal(_core.backend_mul_const_add("cuda:0", a, b, [3, 5, 7, 11], primes),
                          _core.backend_mul_const_add("cpu", a, b, [3, 5, 7, 11], primes))
    assert np.array_equal(_core.backend_add_const("cuda:0", a, [3, 5, 7, 11], primes),
                          _core.backend_add_const("cpu", a, [3, 5, 7, 11], primes))


def test_bad_input_raises(primes):
    a = np.zeros((3, N), dtype=np.uint64)
    bad = a.copy()
    bad[1, 3] = primes[1]
    with pytest.raises(ValueError, match="must be < q"):
        _core.backend_ntt("cpu", bad, primes)
    with pytest.raises(ValueError, match="one prime per limb"):
        _core.backend_ntt("cpu", a, primes[:2])
    with pytest.raises(ValueError, match="power of two"):
        _core.backend_ntt("cpu", np.zeros((3, 12), dtype=np.uint64), primes)
    with pytest.raises(ValueError, match="unknown element-wise op"):
        _core.backend_elementwise("cpu", "div", a, a, primes)
    with pytest.raises(ValueError, match="odd"):
        _core.backend_automorphism("cpu", a, primes, 4)
    with pytest.raises(ValueError, match="unknown device"):
        _core.backend_ntt("tpu", a, primes)
    with pytest.raises(ValueError, match=r"\[1, 32\]"):
        z = np.zeros((33, N), dtype=np.uint64)
        _core.backend_key_switch_dot("cpu", z, z, z, primes[0])
    if not cuda.is_compiled():
        with pytest.raises(RuntimeError, match="HETENSOR_CUDA=ON"):
            _core.backend_ntt("cuda:0", a, primes)
        with pytest.raises(RuntimeError, match="HETENSOR_CUDA=ON"):
            _core.cuda_kernel_times(primes, 6)
