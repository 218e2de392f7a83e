"""The AVX2/FMA kernels and the portable ones give identical results.

Both paths produce canonical residues, so transforms agree bit for bit and a
seeded computation decrypts to exactly the same values.
"""

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core


@pytest.fixture
def restore_simd():
    before = _core.simd_enabled()
    yield
    _core.set_simd_enabled(before)


@pytest.mark.parametrize("log_n", [4, 10, 13])
@pytest.mark.parametrize("bits", [40, 45, 49])
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


def test_seeded_computation_is_identical_on_both_paths(restore_simd):
    x = np.random.default_rng(5).uniform(-1, 1, 300)
    out = []
    for simd in (True, False):
        _core.set_simd_enabled(simd)
        ctx = ht.Context.from_preset("toy-insecure", rotations=[3], seed=99)
        X = ctx.encrypt(x)
        out.append(ctx.decrypt((X * X + X).rotate(3) * 0.5))
    np.testing.assert_array_equal(out[0], out[1])
