"""Tracked value ranges (hetensor.ranges) and polyval's input contract: the
tracked range must lie in the approximation's interval, else ValueError;
``assume_in_interval=True`` lets calibrated data through but still refuses a
range whose polynomial values would overflow (and corrupt every slot)."""

import math

import numpy as np
import pytest

import hetensor as ht
from hetensor import approx

from conftest import bits


@pytest.fixture(scope="module")
def ctx():
    """N = 2^12 with 12 levels (room for composites and for large values)."""
    return ht.Context.from_params(log_n=12, levels=12, dnum=3, allow_insecure=True, seed=77)


def test_encryption_and_scalar_ops_track_the_range(ctx):
    x = np.linspace(0.1, 10, 50)
    ct = ctx.encrypt(x)
    assert ct.value_range == (0.1, 10.0)
    assert ct._ct.bound == 16.0  # the ciphertext's own bound is a power of two
    assert (ct - 1.0).value_range == pytest.approx((-0.9, 9.0))
    assert (2.0 - ct).value_range == pytest.approx((-8.0, 1.9))
    assert (ct * -0.5).value_range == pytest.approx((-5.0, -0.05))
    assert (-ct).value_range == pytest.approx((-10.0, -0.1))
    assert ct.level_to(3).value_range == (0.1, 10.0)
    # other operations fall back to the tracked bound
    assert (ct * ct).value_range == (-256.0, 256.0)
    # complex tensors have no interval
    z = ctx.encrypt(np.array([0.5 + 1j, -0.25]))
    assert z.value_range == (-2.0, 2.0)


def test_polyval_refuses_inputs_outside_the_interval(ctx):
    cube = approx.chebyshev(lambda t: t ** 3, -1, 1, 3)
    big = ctx.encrypt(np.full(8, 200.0))
    with pytest.raises(ValueError, match=r"tracked range is \[200, 200\], which is not inside the interval"):
        big.polyval(cube)
    # a wider interval is the documented fix, and then the result is right
    wide = approx.chebyshev(lambda t: t ** 3, -256, 256, 3)
    got = ctx.decrypt(big.polyval(wide))
    assert np.max(np.abs(got / 8e6 - 1)) < 1e-6
    # one slot at 1000 next to an exp on [-1, 1]: refused, even when the caller vouches
    v = np.linspace(-1, 1, 64)
    v[5] = 1000.0
    e = approx.exp(-1, 1, 8)
    with pytest.raises(ValueError, match=r"tracked range is \[-1, 1000\]"):
        ctx.encrypt(v).polyval(e)
    with pytest.raises(ValueError, match="even with assume_in_interval=True.*corrupt every slot"):
        ctx.encrypt(v).polyval(e, assume_in_interval=True)
    # (unchecked, 1000 made the other slots' errors reach ~2^7: CKKS errors scale with the largest value)
    with pytest.raises(ValueError, match="corrupt every slot"):
        ctx.encrypt(v * 0.1).level_to(e.depth).polyval(e, assume_in_interval=True)  # overflow at level 0
    # a shift puts exp(-8, 0) data right: x - max lies in [-8, 0]
    y = np.linspace(-7, 1, 40)
    out = (ctx.encrypt(y) - 1.0).polyval(approx.exp(-8, 0, 15))
    assert bits(ctx.decrypt(out), np.exp(y - 1)) >= 10


def test_assume_in_interval_keeps_the_other_slots(ctx):
    e = approx.exp(-1, 1, 8)
    v = np.linspace(-1, 1, 64)
    v[5] = 3.0  # one element outside, by a margin the ciphertext can hold
    out = ctx.encrypt(v).polyval(e, assume_in_interval=True)
    got = ctx.decrypt(out)
    keep = np.arange(64) != 5
    assert bits(got[keep], np.exp(v[keep])) >= -math.log2(e.max_error + 2.0 ** -18)
    assert abs(got[5] - e(3.0)) < 1e-3  # the polynomial extrapolated, not exp(3)
    assert abs(got[5] - math.exp(3.0)) > 0.01
    # the output bound covers what it may hold, so later ops check overflow soundly
    assert out._ct.bound >= abs(e(3.0))


def test_polyval_output_range_feeds_the_next_polyval(ctx):
    x = np.random.default_rng(2).uniform(-8, 8, 100)
    s = ctx.encrypt(x).polyval(approx.sigmoid(-8, 8, 15))
    lo, hi = s.value_range
    assert -0.01 < lo < 0.01 and 0.99 < hi < 1.01
    # sigmoid's output is in [0, 1]: an approximation on [-0.05, 1.05] takes it directly
    q = approx.chebyshev(np.sqrt, 0, 1.05, 15)
    with pytest.raises(ValueError, match="not inside"):
        s.polyval(q)  # the range dips a hair below 0 (the margin for noise)
    r = approx.chebyshev(lambda t: t * t, -0.05, 1.05, 2)
    got = ctx.decrypt(s.polyval(r))
    ref = (1 / (1 + np.exp(-x))) ** 2
    assert bits(got, ref) >= 6


def test_polyval_on_partly_filled_and_batched_tensors(ctx):
    p = approx.inv_sqrt(1, 3, 7)
    x = np.linspace(1, 3, 50).reshape(5, 10)
    assert ctx.encrypt(x).value_range == (1.0, 3.0)
    assert bits(ctx.decrypt(ctx.encrypt(x).polyval(p)), 1 / np.sqrt(x)) >= 10
    big = np.random.default_rng(4).uniform(1, 3, ctx.slots + 7)
    assert bits(ctx.decrypt(ctx.encrypt(big).polyval(p)), 1 / np.sqrt(big)) >= 10
    with pytest.raises(ValueError, match="not inside"):
        ctx.encrypt(np.append(x.reshape(-1), 0.5)).polyval(p)
