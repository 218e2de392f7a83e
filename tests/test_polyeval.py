"""Homomorphic polynomial evaluation (cpp/circuits/polyeval, chebyshev).

Every result is compared with a float64 numpy reference and a precision in
bits. The depth (levels consumed), the exact canonical scale of the result and
the refusals (too few levels, bad input) are checked as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core
from numpy.polynomial import chebyshev as npcheb

from conftest import bits

# CKKS noise after a polynomial is ~2^-26 at a 40-bit scale; the bound below
# leaves a few bits of margin.
NOISE_BITS = 20


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture(scope="session")
def poly_ctx():
    """N = 2^11, 8 levels: room for degree 63 with an extra level."""
    return ht.Context.from_params(log_n=11, levels=8, dnum=2, allow_insecure=True, seed=777)


def encrypt_uniform(ctx, a, b, n=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(a, b, ctx.slots if n is None else n)
    x[:2] = [a, b]  # the end points are in the domain too
    return x, ctx.encrypt(x)


def run(ctx, ct, a, b, coeffs):
    out, stats = _core.eval_chebyshev(ctx._engine, ct._ct, _core.ChebyshevPoly(a, b, list(coeffs)))
    return ct._like(out), stats


def cheb_ref(x, a, b, coeffs):
    return npcheb.chebval((2 * np.asarray(x) - a - b) / (b - a), coeffs)


# -- plaintext numerics of the C++ side ------------------------------------------------

def test_interpolation_matches_numpy():
    for f, a, b, d in [(math.exp, -1.0, 1.0, 9), (math.sin, 0.0, 3.0, 12), (lambda t: 1 / (1 + t * t), -4.0, 4.0, 30)]:
        p = _core.chebyshev_interpolate(f, a, b, d)
        ref = npcheb.chebinterpolate(lambda y: np.vectorize(f)(0.5 * (b - a) * y + 0.5 * (a + b)), d)
        assert bits(np.array(p.coeffs), ref) >= 45
        x = np.linspace(a, b, 101)
        assert bits(np.array([p.eval(v) for v in x]), cheb_ref(x, a, b, ref)) >= 45


def test_power_to_chebyshev_conversion():
    rng = np.random.default_rng(3)
    c = rng.uniform(-1, 1, 12)
    p = _core.chebyshev_from_power(list(c))
    x = np.linspace(-1, 1, 257)
    assert bits(np.array([p.eval(v) for v in x]), np.polynomial.polynomial.polyval(x, c)) >= 45


def test_depth_formulas():
    assert [_core.chebyshev_depth(d) for d in (0, 1, 2, 3, 4, 7, 8, 63, 64)] == [0, 1, 2, 2, 3, 3, 4, 6, 7]
    assert _core.chebyshev_affine_is_free(-1, 1) and _core.chebyshev_affine_is_free(0, 1)
    assert _core.chebyshev_affine_is_free(0, 3) and not _core.chebyshev_affine_is_free(-8, 0)
    assert _core.chebyshev_eval_depth(-8, 0, 15) == 5 and _core.chebyshev_eval_depth(-1, 1, 15) == 4
    assert _core.chebyshev_eval_depth(-8, 0, 1) == 1 and _core.chebyshev_eval_depth(-8, 0, 0) == 0


# -- encrypted evaluation -------------------------------------------------------------

@pytest.mark.parametrize(
    "name,f,a,b,degree",
    [
        ("exp", np.exp, -1.0, 1.0, 15),
        ("sin", np.sin, -1.0, 1.0, 21),
        ("runge", lambda t: 1 / (1 + t * t), -1.0, 1.0, 40),
        ("exp_wide", np.exp, -8.0, 0.0, 24),
        ("sin_0_3", np.sin, 0.0, 3.0, 9),
    ],
)
def test_functions_match_reference(poly_ctx, name, f, a, b, degree):
    x, ct = encrypt_uniform(poly_ctx, a, b, seed=degree)
    p = _core.chebyshev_interpolate(lambda t: float(f(t)), a, b, degree)
    out, _ = run(poly_ctx, ct, a, b, p.coeffs)
    got = out.decrypt()
    plain = cheb_ref(x, a, b, p.coeffs)
    interp_bits = bits(plain, f(x))
    # against the polynomial itself: CKKS noise only
    assert bits(got, plain) >= NOISE_BITS + 4, name
    # against the function: what the degree allows, capped by the noise
    assert bits(got, f(x)) >= min(interp_bits, NOISE_BITS) - 1, name
    assert out.scale == poly_ctx.scale_at(out.level)


def test_random_polynomial(poly_ctx):
    rng = np.random.default_rng(11)
    c = rng.uniform(-1, 1, 31) / np.arange(1, 32)
    x, ct = encrypt_uniform(poly_ctx, -1, 1, seed=5)
    out, _ = run(poly_ctx, ct, -1, 1, c)
    assert bits(out.decrypt(), cheb_ref(x, -1, 1, c)) >= NOISE_BITS + 4
    assert ct.level - out.level == 5


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 27, 31, 32, 40, 63])
def test_depth_is_optimal(poly_ctx, degree):
    rng = np.random.default_rng(degree)
    # decaying coefficients, as for a smooth function (a polynomial with a
    # large derivative amplifies the input noise by max |p'| ~ degree^2)
    c = rng.uniform(-1, 1, degree + 1) * 0.85 ** np.arange(degree + 1)
    c[degree] = 0.5 * 0.85 ** min(degree, 20)
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=256, seed=degree)
    out, stats = run(poly_ctx, ct, -1, 1, c)
    expect = math.ceil(math.log2(degree + 1))
    assert ct.level - out.level == expect == stats.levels
    assert out.scale == poly_ctx.scale_at(out.level)  # exact: no drift
    assert bits(out.decrypt(), cheb_ref(x, -1, 1, c)) >= NOISE_BITS + 2


@pytest.mark.parametrize("a,b,extra", [(0.0, 1.0, 0), (-1.5, 1.5, 0), (0.0, 3.0, 0), (-4.0, 4.0, 1), (-16.0, 0.0, 1)])
def test_change_of_variable_cost(poly_ctx, a, b, extra):
    c = np.random.default_rng(1).uniform(-1, 1, 16) / np.arange(1, 17)
    x, ct = encrypt_uniform(poly_ctx, a, b, n=256, seed=2)
    out, _ = run(poly_ctx, ct, a, b, c)
    assert ct.level - out.level == 4 + extra == _core.chebyshev_eval_depth(a, b, 15)
    assert out.scale == poly_ctx.scale_at(out.level)
    assert bits(out.decrypt(), cheb_ref(x, a, b, c)) >= NOISE_BITS + 2


def test_results_compose_and_add(poly_ctx):
    # Exact canonical scales: results of different circuits at one level add
    # without any fix-up, and a polynomial of a polynomial works.
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=512, seed=9)
    c1 = [0.1, 0.7, 0.0, -0.2]
    c2 = [0.0, 0.5, 0.25, 0.1, 0.05]
    y, _ = run(poly_ctx, ct, -1, 1, c1)
    z, _ = run(poly_ctx, y, -1, 1, c2)
    w = z + ct.level_to(z.level) * 3
    ref = cheb_ref(cheb_ref(x, -1, 1, c1), -1, 1, c2) + 3 * x
    assert bits(w.decrypt(), ref) >= NOISE_BITS + 2
    assert z.level == ct.level - 2 - 3


def test_constant_and_linear(poly_ctx):
    x, ct = encrypt_uniform(poly_ctx, -2, 6, n=64)
    out, _ = run(poly_ctx, ct, -2, 6, [1.25])
    assert out.level == ct.level and bits(out.decrypt(), np.full(64, 1.25)) >= 30
    out, _ = run(poly_ctx, ct, -2, 6, [0.5, -2.0])
    assert out.level == ct.level - 1
    assert bits(out.decrypt(), cheb_ref(x, -2, 6, [0.5, -2.0])) >= NOISE_BITS + 4


def test_power_basis(poly_ctx):
    rng = np.random.default_rng(4)
    c = rng.uniform(-1, 1, 10)
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=300, seed=4)
    out, stats = _core.eval_power(poly_ctx._engine, ct._ct, list(c))
    assert ct.level - out.level == 4 == stats.levels
    assert bits(poly_ctx.decrypt(ct._like(out)), np.polynomial.polynomial.polyval(x, c)) >= NOISE_BITS + 2


def test_batch_of_ciphertexts(poly_ctx):
    # More values than slots: one batch of 3 ciphertexts, evaluated in one call.
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (3, poly_ctx.slots - 5))
    ct = poly_ctx.encrypt(x)
    assert ct.num_ciphertexts == 3
    c = [0.3, -0.5, 0.2, 0.1, -0.05, 0.02, 0.01, -0.01]
    out, _ = run(poly_ctx, ct, -1, 1, c)
    assert bits(out.decrypt(), cheb_ref(x, -1, 1, c)) >= NOISE_BITS + 2


def test_operation_counts_degree_63(poly_ctx):
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=64)
    c = np.random.default_rng(63).uniform(-1, 1, 64) / np.arange(1, 65)
    out, st = run(poly_ctx, ct, -1, 1, c)
    assert st.levels == 6 and st.baby_step in (4, 8, 16)
    # baby-step giant-step: far fewer products than the 62 of a power ladder
    assert st.ct_products <= 24 and st.relinearizations <= st.ct_products
    assert st.scalar_products >= 32


def test_odd_function_skips_even_powers(poly_ctx):
    p = _core.chebyshev_interpolate(math.sin, -1, 1, 31)
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=64)
    out, st_odd = run(poly_ctx, ct, -1, 1, p.coeffs)
    c = np.random.default_rng(2).uniform(-1, 1, 32) / np.arange(1, 33)
    _, st_full = run(poly_ctx, ct, -1, 1, c)
    assert st_odd.scalar_products < st_full.scalar_products  # no terms for the zero even coefficients
    assert st_odd.powers <= st_full.powers
    assert bits(out.decrypt(), np.sin(x)) >= NOISE_BITS


# -- refusals --------------------------------------------------------------------------

def test_too_few_levels_names_counts(poly_ctx):
    _, ct = encrypt_uniform(poly_ctx, -1, 1, n=16)
    low = ct.level_to(3)
    with pytest.raises(ValueError, match=r"needs 4 levels .*at level 3"):
        run(poly_ctx, low, -1, 1, np.ones(16))
    with pytest.raises(ValueError, match=r"needs 5 levels .*change of variable.*at level 3"):
        run(poly_ctx, low, -8, 0, np.ones(16))


def test_polyeval_refuses_bad_intervals_coefficients_and_contexts(poly_ctx, other_ctx):
    _, ct = encrypt_uniform(poly_ctx, -1, 1, n=16)
    with pytest.raises(ValueError, match="interval"):
        run(poly_ctx, ct, 1, 1, [1.0, 2.0])
    with pytest.raises(ValueError, match="not finite"):
        run(poly_ctx, ct, -1, 1, [1.0, math.nan])
    with pytest.raises(ValueError, match="no coefficients"):
        run(poly_ctx, ct, -1, 1, [])
    foreign = other_ctx.encrypt(np.zeros(4))
    with pytest.raises(ValueError, match="another context"):
        _core.eval_chebyshev(poly_ctx._engine, foreign._ct, _core.ChebyshevPoly(-1, 1, [0.0, 1.0]))
    with pytest.raises(ValueError, match="interval"):
        _core.chebyshev_interpolate(math.exp, 2.0, 1.0, 3)


def test_output_at_a_requested_scale(poly_ctx):
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=128, seed=12)
    c = [0.2, 0.6, -0.1, 0.05]
    target = poly_ctx.scale_at(ct.level - 2) * 3.7
    out, _ = _core.eval_chebyshev(poly_ctx._engine, ct._ct, _core.ChebyshevPoly(-1, 1, c), target)
    assert out.scale == target and out.level == ct.level - 2
    assert bits(poly_ctx.decrypt(ct._like(out)), cheb_ref(x, -1, 1, c)) >= NOISE_BITS + 4
    with pytest.raises(ValueError, match="output scale"):
        _core.eval_chebyshev(poly_ctx._engine, ct._ct, _core.ChebyshevPoly(-1, 1, c), 2.0 ** 90)


def test_chain_with_regions_of_prime_sizes():
    # bootstrapping-style chain: 60-bit primes above 40-bit ones. A polynomial
    # inside the 60-bit region keeps its ~2^60 precision; its last rescale may
    # cross into the 40-bit region; powers may not.
    ctx = ht.Context.from_params(log_n=11, levels=8, level_bits=[40] * 3 + [60] * 5, dnum=2,
                                 allow_insecure=True, seed=99)
    x, ct = encrypt_uniform(ctx, -1, 1, n=256, seed=3)
    c = np.random.default_rng(5).uniform(-1, 1, 16) * 0.8 ** np.arange(16)
    inside, _ = run(ctx, ct, -1, 1, c)  # levels 8 -> 4, all 60-bit
    assert inside.level == 4 and inside.scale == ctx.scale_at(4)
    assert bits(inside.decrypt(), cheb_ref(x, -1, 1, c)) >= 40
    crossing, _ = run(ctx, ct.level_to(7), -1, 1, c)  # last rescale 4 -> 3 crosses
    assert crossing.level == 3 and crossing.scale == ctx.scale_at(3)
    assert bits(crossing.decrypt(), cheb_ref(x, -1, 1, c)) >= NOISE_BITS + 4
    with pytest.raises(ValueError, match="cross from larger primes"):
        run(ctx, ct.level_to(6), -1, 1, c)


def test_unrelinearized_input(poly_ctx):
    # a size-3 product (x*x before relinearization) is relinearized first
    x, ct = encrypt_uniform(poly_ctx, -1, 1, n=64, seed=21)
    sq = poly_ctx._engine.rescale(poly_ctx._engine.multiply_no_relin(ct._ct, ct._ct))
    assert sq.size == 3
    c = [0.1, -0.4, 0.3, 0.2]
    out, _ = _core.eval_chebyshev(poly_ctx._engine, sq, _core.ChebyshevPoly(0, 1, c))
    assert out.level == sq.level - 2
    assert bits(poly_ctx.decrypt(ct._like(out)), cheb_ref(x * x, 0, 1, c)) >= NOISE_BITS
