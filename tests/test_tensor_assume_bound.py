"""CipherTensor.assume_bound: a caller-known bound replaces the worst-case tracking.

The values must not change (float64 reference, bits asserted), the tracked
bound and range must, and impossible bounds are refused with ValueError.
"""

import math

import numpy as np
import pytest

import hetensor as ht
from conftest import rel_bits as bits


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset("toy-insecure", seed=5)


def test_values_kept_bound_and_range_replaced(ctx):
    x = np.linspace(-0.9, 0.8, 16)
    t = ctx.encrypt(x)
    y = t * t * t  # tracked bound >= 0.9^3 by worst case; the true max is 0.729
    z = y.assume_bound(0.75)
    assert z.level == y.level and z.scale == y.scale and z.shape == y.shape
    assert bits(ctx.decrypt(z), x ** 3) >= 20
    assert bits(ctx.decrypt(z), ctx.decrypt(y)) >= 40  # the data is the same ciphertext
    lo, hi = z.value_range
    assert lo >= -0.75 and hi <= 0.75
    # a looser bound is allowed too (a weaker statement)
    assert z.assume_bound(2.0).value_range[1] <= 2.0
    # the original keeps its own (rigorous, wider) tracking
    assert y.value_range[1] >= 0.729 and y.value_range != z.value_range


def test_tracked_interval_is_intersected(ctx):
    t = ctx.encrypt(np.array([0.1, 0.2, 0.5]))  # interval [0.1, 0.5] from encryption
    assert t.assume_bound(0.3).value_range == (0.1, 0.3)
    assert t.assume_bound(4.0).value_range == (0.1, 0.5)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_bounds_raise(ctx, bad):
    t = ctx.encrypt(np.ones(4) * 0.5)
    with pytest.raises(ValueError, match="positive and finite"):
        t.assume_bound(bad)


def test_non_numbers_and_impossible_bounds_raise(ctx):
    t = ctx.encrypt(np.array([2.0, 3.0]))
    with pytest.raises(TypeError, match="real number"):
        t.assume_bound("1.0x")
    with pytest.raises(ValueError, match="contradicts the tracked range"):
        t.assume_bound(1.0)  # every value is known to be >= 2
    with pytest.raises(ValueError, match="do not fit"):
        t.assume_bound(1e300)


def test_assume_range_narrows_the_interval_for_polyval(ctx):
    from hetensor import approx

    x = np.linspace(0.05, 0.95, 16)
    t = ctx.encrypt(x)
    v = (t * t) * 0.5 + (t * 0.5)  # in [0.026, 0.93]; tracked only by a bound
    poly = approx.chebyshev(lambda u: 1.0 / np.sqrt(u), 0.02, 1.0, degree=7)
    with pytest.raises(ValueError):
        v.polyval(poly)  # the tracked range [-b, b] leaves the interval
    w = v.assume_range(0.0, 1.0)
    assert w.value_range[0] >= 0.0 and w.value_range[1] <= 1.0
    ref = 1.0 / np.sqrt(0.5 * x * x + 0.5 * x)
    y = ctx.decrypt(w.assume_range(0.02, 1.0).polyval(poly))
    assert np.max(np.abs(y - ref)) <= poly.max_error + 1e-4  # the degree-7 fit's own error dominates
    assert bits(y, poly(0.5 * x * x + 0.5 * x)) >= 15


@pytest.mark.parametrize("lo, hi", [(1.0, 0.5), (math.nan, 1.0), (0.0, math.inf), (0.0, 0.0)])
def test_bad_ranges_raise(ctx, lo, hi):
    t = ctx.encrypt(np.ones(4) * 0.5)
    with pytest.raises(ValueError, match="assume_range"):
        t.assume_range(lo, hi)
