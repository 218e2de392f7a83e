"""The sampler of the uniform a halves (keys, compact keys, seeded ciphertexts):
AES-256-CTR words mapped to [0, q) by the high word of w * q with rejection
(cpp/core/aes.cpp, uniform_mod_q). Chi-squared tests of uniformity with a
fixed key (deterministic: no flakes), and the same test catching the bias of
a plain ``w % q`` on the same words, so it has the power to fail."""

import math

import numpy as np
import pytest

from hetensor import _core

KEY = bytes(range(32))


def _chi2(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(np.sum((counts - expected) ** 2 / expected))


def _critical(df: int, z: float = 4.75) -> float:
    """The chi-squared value with upper tail ~1e-6 (Wilson-Hilferty)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _bins(values: np.ndarray, q: int, k: int) -> np.ndarray:
    """Counts of the values in k equal slices of [0, q) (exact integer arithmetic)."""
    idx = np.array([v * k // q for v in values.tolist()], dtype=np.int64) if q > 2**53 else \
        (values.astype(np.float64) * k / q).astype(np.int64)
    return np.bincount(idx, minlength=k)


@pytest.mark.parametrize("q", [7, 65537, 0x1FFFFFFFFFFE0001, (1 << 63) + 29])
def test_values_are_uniform_in_range(q):
    n = 1 << 18
    v = _core.aes256_uniform_mod_q(KEY, 3, q, n)
    assert v.dtype == np.uint64 and v.shape == (n,)
    assert int(v.max()) < q
    k = min(q, 64)
    counts = _bins(v, q, k)
    assert counts.sum() == n
    assert _chi2(counts) < _critical(k - 1)


def test_the_test_sees_modulo_bias():
    """q = 3 * 2^62: w % q hits [0, 2^62) twice as often; the rejection map does not."""
    q = 3 << 62
    n = 1 << 16
    words = _core.aes256_ctr(KEY, 5, 0, n // 2)  # n u64 words
    naive = np.array([int(w) % q for w in words.tolist()], dtype=np.uint64)
    assert _chi2(_bins(naive, q, 3)) > 100 * _critical(2)
    good = _core.aes256_uniform_mod_q(KEY, 5, q, n)
    assert _chi2(_bins(good, q, 3)) < _critical(2)


def test_streams_and_keys_are_deterministic_and_distinct():
    q = 0x1FFFFFFFFFFE0001
    a = _core.aes256_uniform_mod_q(KEY, 1, q, 4096)
    assert np.array_equal(a, _core.aes256_uniform_mod_q(KEY, 1, q, 4096))
    assert np.array_equal(a[:100], _core.aes256_uniform_mod_q(KEY, 1, q, 100))  # a prefix
    assert np.count_nonzero(a == _core.aes256_uniform_mod_q(KEY, 2, q, 4096)) < 2
    assert np.count_nonzero(a == _core.aes256_uniform_mod_q(bytes(32), 1, q, 4096)) < 2


@pytest.mark.parametrize("args, words", [
    ((b"short", 0, 7, 8), "32 bytes"),
    ((KEY, 0, 1, 8), "q must be >= 2"),
    ((KEY, 0, 7, 0), r"n must be in \[1, 2\^26\]"),
    ((KEY, 0, 7, (1 << 26) + 1), r"n must be in \[1, 2\^26\]"),
])
def test_bad_arguments_are_refused(args, words):
    with pytest.raises(ValueError, match=words):
        _core.aes256_uniform_mod_q(*args)
