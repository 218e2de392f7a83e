"""Parameter validation beyond log2(QP) (issue 13): error width, secret
distribution, seeded contexts, integer arguments."""

from __future__ import annotations

import pytest

import hetensor as ht

# A secure shape at N = 2^12 (36 + 32 + 36 = 104 <= 109 bits), cheap to make.
SMALL_SECURE = dict(log_n=12, levels=1, scale_bits=32, first_prime_bits=36, special_prime_bits=36, special_primes=1)


def test_small_secure_shape_is_secure_without_a_seed():
    ctx = ht.Context.from_params(**SMALL_SECURE)
    assert ctx.is_secure and ctx.params_secure and ctx.security_problem == ""
    assert "128-bit secure" in ctx.describe()


@pytest.mark.parametrize("sigma", [0.001, 1.0, 3.18])
def test_small_sigma_is_refused(sigma):
    with pytest.raises(ht.SecurityError, match="sigma"):
        ht.Context.from_params(**SMALL_SECURE, sigma=sigma)
    ctx = ht.Context.from_params(**SMALL_SECURE, sigma=sigma, allow_insecure=True, seed=1)
    assert not ctx.is_secure and not ctx.params_secure
    assert "INSECURE" in ctx.describe() and "sigma" in ctx._engine.params_problem


def test_standard_sigma_is_accepted():
    assert ht.Context.from_params(**SMALL_SECURE, sigma=3.19).is_secure


def test_n14_chain_with_tiny_sigma_is_refused():
    # The reproducer: the n14 chain (within log QP) with sigma = 0.001.
    with pytest.raises(ht.SecurityError, match="3.19"):
        ht.Context.from_params(log_n=14, levels=7, dnum=8, special_prime_bits=61, special_primes=1, sigma=0.001)


@pytest.mark.parametrize("h", [1, 64, 2047])
def test_sparse_secret_is_refused(h):
    with pytest.raises(ht.SecurityError, match="Hamming weight"):
        ht.Context.from_params(**SMALL_SECURE, hamming_weight=h)
    assert not ht.Context.from_params(**SMALL_SECURE, hamming_weight=h, allow_insecure=True, seed=1).params_secure


def test_dense_fixed_weight_secret_is_accepted():
    ctx = ht.Context.from_params(**SMALL_SECURE, hamming_weight=2048)
    assert ctx.is_secure and "h=2048" in ctx.describe()


def test_seeded_context_is_not_secure():
    ctx = ht.Context.from_params(**SMALL_SECURE, seed=5)
    assert ctx.params_secure and not ctx.is_secure
    assert "seed" in ctx.security_problem
    assert "INSECURE" in ctx.describe() and "128-bit secure" not in ctx.describe()


@pytest.mark.parametrize("field,value", [("log_n", 12.9), ("levels", 1.5), ("levels", True), ("dnum", "1"),
                                         ("hamming_weight", 0.0), ("scale_bits", None)])
def test_non_integer_arguments_are_refused(field, value):
    params = dict(SMALL_SECURE)
    params[field] = value
    with pytest.raises(TypeError, match=field):
        ht.Context.from_params(**params)


@pytest.mark.parametrize("sigma,error", [(float("nan"), ValueError), (float("inf"), ValueError),
                                         ("3.2", TypeError), (True, TypeError)])
def test_sigma_must_be_a_finite_number(sigma, error):
    with pytest.raises(error, match="sigma"):
        ht.Context.from_params(**SMALL_SECURE, sigma=sigma)


def test_allow_insecure_must_be_a_bool():
    with pytest.raises(TypeError, match="allow_insecure"):
        ht.Context.from_params(**SMALL_SECURE, allow_insecure=1)
