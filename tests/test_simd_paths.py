"""The SIMD kernels (AVX2 NTT, FMA dot product, AVX2 add) and the portable ones give identical results.

Both paths produce canonical residues, so transforms agree bit for bit and a
seeded computation decrypts to exactly the same values.
"""

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core
from conftest import bits


@pytest.fixture
def restore_simd():
    before = _core.simd_enabled()
    yield
    _core.set_simd_enabled(before)


@pytest.mark.parametrize("log_n", [4, 5, 10, 13])
@pytest.mark.parametrize("bits", [30, 40, 45, 49, 50, 55, 60, 61])
def test_ntt_paths_agree(restore_simd, log_n, bits):
    n = 1 << log_n
    q = _core.ntt_prime(bits, n)
    a = np.random.default_rng(log_n + bits).integers(0, q, n, dtype=np.uint64)
    _core.set_simd_enabled(True)
    fast_f = _core.ntt_forward(a, q)
    fast_i = _core.ntt_inverse(a, q)
    _core.set_simd_enabled(False)
    assert not _core.simd_enabled()
    np.testing.assert_array_equal(fast_f, _core.ntt_forward(a, q))
    np.testing.assert_array_equal(fast_i, _core.ntt_inverse(a, q))
    np.testing.assert_array_equal(_core.ntt_inverse(fast_f, q), a)


@pytest.mark.parametrize("log_n", [4, 5, 7])
@pytest.mark.parametrize("bits", [30, 45, 59, 61])
def test_wide_prime_ntt_against_python_integers(restore_simd, log_n, bits):
    """The AVX2 NTT (64-bit lanes, any prime below 2^61) evaluates the polynomial
    at the odd powers of psi (Python integers), on extreme residues too: its
    Shoup quotient may fall 2 short, so values near q test the lazy bounds."""
    n = 1 << log_n
    q = _core.ntt_prime(bits, n)
    psi = int(_core.primitive_2n_root(q, n))
    rng = np.random.default_rng(log_n * 7 + bits)
    _core.set_simd_enabled(True)
    for a in (np.full(n, q - 1, dtype=np.uint64), rng.integers(0, q, n, dtype=np.uint64),
              rng.integers(q - 4, q, n, dtype=np.uint64)):
        got = [int(v) for v in _core.ntt_forward(a, q)]
        for k in range(n):   # output k is a(psi^(2 bitrev(k) + 1)), by Horner
            x, acc = pow(psi, 2 * int(format(k, f"0{log_n}b")[::-1], 2) + 1, q), 0
            for c in reversed(a.tolist()):
                acc = (acc * x + c) % q
            assert got[k] == acc
        np.testing.assert_array_equal(_core.ntt_inverse(np.array(got, dtype=np.uint64), q), a)


def test_seeded_computation_is_identical_on_both_paths(restore_simd):
    x = np.random.default_rng(5).uniform(-1, 1, 300)
    out = []
    for simd in (True, False):
        _core.set_simd_enabled(simd)
        ctx = ht.Context.from_preset("toy-insecure", rotations=[3], seed=99)
        X = ctx.encrypt(x)
        out.append(ctx.decrypt((X * X + X).rotate(3) * 0.5))
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("batch", [1, 24])   # 24 toy ciphertexts: 10 MiB, written with streaming stores
def test_add_and_sub_paths_agree(restore_simd, batch):
    ctx = ht.Context.from_preset("toy-insecure", seed=5)
    rng = np.random.default_rng(batch)
    x = rng.uniform(-1, 1, batch * ctx.slots - 3)   # a partial last ciphertext
    y = rng.uniform(-1, 1, x.size)
    X, Y = ctx.encrypt(x), ctx.encrypt(y)
    Z = X * 0.5                                     # one level lower: add aligns the levels
    raw = {}
    for simd in (True, False):
        _core.set_simd_enabled(simd)
        raw[simd] = [r.to_bytes(compress=False) for r in (X + Y, X - Y, Y - X, X + Z)]
        for got, ref in zip((X + Y, X - Y, Y - X, X + Z), (x + y, x - y, y - x, 1.5 * x)):
            assert bits(ctx.decrypt(got), ref) >= 20
    assert raw[True] == raw[False]
