"""hetensor.approx: polynomial approximations and CipherTensor.polyval.

Plaintext: every approximation meets its stated max error on its interval
(checked on points other than the grid that measured it), the degree derived
from a target error is the lowest that meets it, minimax beats interpolation.
Encrypted: results are within max_error + CKKS noise of the float64 function,
consume exactly `depth` levels, keep unused slots at zero, and too few levels
raise ValueError with both counts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetensor as ht
from hetensor import approx

from conftest import bits

NOISE = 2.0 ** -18  # CKKS noise bound after a polynomial at a 40-bit scale, with margin


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture(scope="session")
def deep_ctx():
    """N = 2^12 with 12 levels, for Newton steps and squarings."""
    return ht.Context.from_params(log_n=12, levels=12, dnum=3, allow_insecure=True, seed=4321)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


APPROXIMATIONS = {
    "exp_d15": (lambda: approx.exp(-8, 0, 15), np.exp),
    "exp_target": (lambda: approx.exp(-16, 0, target_error=1e-4), np.exp),
    "exp_squared": (lambda: approx.exp(-32, 0, 8, squarings=3), np.exp),
    "inv_sqrt": (lambda: approx.inv_sqrt(0.5, 2, 7), lambda x: 1 / np.sqrt(x)),
    "inv_sqrt_newton": (lambda: approx.inv_sqrt(0.1, 10, 7, newton_steps=2), lambda x: 1 / np.sqrt(x)),
    "reciprocal_newton": (lambda: approx.reciprocal(0.5, 4, 7, newton_steps=1), lambda x: 1 / x),
    "reciprocal_negative": (lambda: approx.reciprocal(-4, -1, 11), lambda x: 1 / x),
    "relu": (lambda: approx.relu(-1, 1, 31), lambda x: np.maximum(x, 0)),
    "relu_wide": (lambda: approx.relu(-5, 5, target_error=0.05), lambda x: np.maximum(x, 0)),
    "gelu": (lambda: approx.gelu(-4, 4, 15), _gelu),
    "sigmoid": (lambda: approx.sigmoid(-8, 8, target_error=1e-3), _sigmoid),
    "sigmoid_minimax": (lambda: approx.sigmoid(-8, 8, 15, minimax=True), _sigmoid),
    "chebyshev_tanh": (lambda: approx.chebyshev(np.tanh, -2, 2, 20), np.tanh),
}


@pytest.fixture(scope="module")
def made():
    return {k: make() for k, (make, _) in APPROXIMATIONS.items()}


@pytest.mark.parametrize("key", list(APPROXIMATIONS))
def test_meets_stated_error_plaintext(made, key):
    p, f = made[key], APPROXIMATIONS[key][1]
    assert p.max_error > 0 and math.isfinite(p.max_error)
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(p.a, p.b, 20000), [p.a, p.b]])
    err = float(np.max(np.abs(p(x) - f(x))))
    # max_error was measured on a fixed dense grid; other points stay within it
    assert err <= p.max_error * 1.02 + 1e-15, (err, p.max_error)
    assert p.interval == (p.a, p.b) and p.degree >= 1 and p.depth >= 1


def test_target_error_gives_lowest_degree():
    for target in (1e-3, 1e-6, 1e-9):
        p = approx.exp(-4, 0, target_error=target)
        assert p.max_error <= target
        assert approx.exp(-4, 0, p.degree - 1).max_error > target
    p = approx.chebyshev(lambda t: 1 / (1 + 25 * t * t), -1, 1, target_error=1e-3)
    assert p.max_error <= 1e-3 < approx.chebyshev(lambda t: 1 / (1 + 25 * t * t), -1, 1, p.degree - 1).max_error


def test_target_error_with_refinement_steps():
    p = approx.inv_sqrt(0.01, 10, target_error=1e-3, newton_steps=2)
    assert p.max_error <= 1e-3 and p.depth == p.base.depth + 4
    q = approx.exp(-32, 0, target_error=1e-5, squarings=4)
    assert q.max_error <= 1e-5 and q.depth == q.base.depth + 4
    # squaring lowers the degree that a wide interval needs
    assert q.degree < approx.exp(-32, 0, target_error=1e-5).degree


def test_minimax_lowers_the_error():
    for make in (lambda m: approx.relu(-1, 1, 16, minimax=m), lambda m: approx.sigmoid(-8, 8, 12, minimax=m),
                 lambda m: approx.chebyshev(np.abs, -1, 1, 20, minimax=m)):
        interp, best = make(False), make(True)
        assert best.max_error < 0.8 * interp.max_error


def test_minimax_equioscillates():
    # the best degree-8 approximation of exp on [-1, 1] has error ~ 2^-8 / 9! (the
    # Chebyshev-series bound), and interpolation is within a factor of about 1.5
    p = approx.chebyshev(np.exp, -1, 1, 8, minimax=True)
    q = approx.chebyshev(np.exp, -1, 1, 8)
    assert p.max_error <= q.max_error and p.max_error < 1.2 * 2.0 ** -8 / math.factorial(9)


def test_polynomial_object():
    p = approx.chebyshev(math.exp, 0, 2, 10)  # a scalar-only function works too
    x = np.linspace(0, 2, 33)
    ref = np.polynomial.chebyshev.chebval(x - 1, p.coeffs)
    assert bits(p(x), ref) >= 50 and isinstance(p(1.0), float)
    assert bits(p(x), np.exp(x)) >= 25
    # the C++ Clenshaw evaluation agrees
    from hetensor import _core

    cp = _core.ChebyshevPoly(0, 2, list(p.coeffs))
    assert bits(np.array([cp.eval(v) for v in x]), ref) >= 45
    assert p.depth == 4 and "degree=10" in repr(p)
    # an even function: odd coefficients vanish, the degree drops to what is evaluated
    assert approx.chebyshev(np.cos, -1, 1, 9).degree == 8
    assert approx.Polynomial([1.0, 2.0, 0.0, 0.0]).degree == 1


def test_argument_errors():
    assert approx.exp(-1, 0).max_error <= approx.DEFAULT_TARGET_ERROR  # neither: the default (issue 16)
    with pytest.raises(ValueError, match="not both"):
        approx.exp(-1, 0, 5, target_error=1e-3)
    with pytest.raises(ValueError, match="positive"):
        approx.inv_sqrt(0, 1, 5)
    with pytest.raises(ValueError, match="excludes 0"):
        approx.reciprocal(-1, 1, 5)
    with pytest.raises(ValueError, match="interval"):
        approx.chebyshev(np.sin, 1, -1, 5)
    with pytest.raises(ValueError, match="cannot reach"):
        approx.relu(-1, 1, target_error=1e-9, minimax=False)
    with pytest.raises(ValueError, match="degree"):
        approx.sigmoid(-1, 1, -3)


# -- encrypted --------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(APPROXIMATIONS))
def test_encrypted_within_error_plus_noise(made, deep_ctx, key):
    p, f = made[key], APPROXIMATIONS[key][1]
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(p.a, p.b, 200), [p.a, p.b]])
    ct = deep_ctx.encrypt(x)
    out = ct.polyval(p)
    assert ct.level - out.level == p.depth
    assert out.scale == deep_ctx.scale_at(out.level)
    got = out.decrypt()
    scale = max(1.0, float(np.max(np.abs(f(x)))))
    assert np.max(np.abs(got - p(x))) <= NOISE * scale  # the circuit computes the approximation
    assert np.max(np.abs(got - f(x))) <= p.max_error + NOISE * scale


def test_toy_context_and_padding(toy_ctx):
    # a tensor that fills part of a ciphertext: unused slots are moved into the
    # interval for the evaluation (1/sqrt(0) would be far outside it) and come
    # back as zeros
    p = approx.inv_sqrt(1, 3, 7)
    x = np.linspace(1, 3, 50).reshape(5, 10)
    out = toy_ctx.encrypt(x).polyval(p)
    assert out.shape == (5, 10) and out.level == toy_ctx.max_level - p.depth
    assert bits(out.decrypt(), 1 / np.sqrt(x)) >= -math.log2(p.max_error + NOISE)
    rows = toy_ctx._engine.decrypt(out._ct)
    assert np.max(np.abs(rows.reshape(-1)[50:])) < NOISE
    # sums over all slots (rotations) therefore see only the real elements
    s = out + out
    assert bits(s.decrypt(), 2 / np.sqrt(x)) >= -math.log2(2 * (p.max_error + NOISE))


def test_batch_larger_than_slots(deep_ctx):
    p = approx.sigmoid(-6, 6, 15)
    x = np.random.default_rng(3).uniform(-6, 6, deep_ctx.slots + 100)
    out = deep_ctx.encrypt(x).polyval(p)
    assert out.num_ciphertexts == 2
    assert np.max(np.abs(out.decrypt() - _sigmoid(x))) <= p.max_error + NOISE


def test_stats_for_the_bench(deep_ctx):
    p = approx.relu(-1, 1, 63)  # degree 62 (the odd part is x / 2)
    assert p.degree == 62
    out, stats = p.evaluate_with_stats(deep_ctx.encrypt(np.linspace(-1, 1, 64)))
    assert stats.levels == 6 and stats.ct_products > 0
    assert set(stats.as_dict()) >= {"ct_products", "relinearizations", "rescales", "scalar_products", "levels"}


def test_too_few_levels_raises_with_counts(toy_ctx):
    p = approx.inv_sqrt(0.1, 10, 7, newton_steps=2)  # depth 4 + 4
    ct = toy_ctx.encrypt(np.linspace(0.1, 10, 8))
    with pytest.raises(ValueError, match=rf"needs {p.depth} levels but the tensor is at level {toy_ctx.max_level}"):
        ct.polyval(p)
    q = approx.relu(-1, 1, 31)
    with pytest.raises(ValueError, match="needs 5 levels but the tensor is at level 2"):
        ct.level_to(2).polyval(q)


def test_polyval_refuses_other_inputs(toy_ctx):
    ct = toy_ctx.encrypt(np.linspace(-1, 1, 8))
    with pytest.raises(TypeError, match="approximation"):
        ct.polyval([1.0, 2.0])
    with pytest.raises(ValueError, match="complex"):
        toy_ctx.encrypt(np.array([1 + 1j, 0.5])).polyval(approx.exp(-1, 0, 3))


def test_polyval_on_a_matrix_layout_with_padding_rows():
    # a 6 x 7 matrix sits in super-slots of 8 rows: the unused slots are inside
    # the data, not after it, and must not be shifted into the interval as data
    ctx = ht.Context.from_preset("toy-insecure", seed=3)
    x = np.random.default_rng(3).uniform(-2, 2, (6, 7))
    p = approx.relu(-3, 3, degree=7)
    y = ctx.decrypt(ctx.encrypt(x, layout="matrix").polyval(p))
    assert np.max(np.abs(y - p(x))) < 2.0 ** -20
