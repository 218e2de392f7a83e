"""Secure-size check at n16 (N = 2^16, 24 levels, scale 2^40): slow, run with
``pytest -m slow``. Key generation takes about a second and one multiply
about a second on one core."""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from conftest import bits


@pytest.mark.slow
def test_n16_multiply_and_rotation_precision():
    ctx = ht.Context.from_preset("n16", rotations=[1, -3], seed=2024)
    assert ctx.params_secure and ctx.ring_degree == 2**16 and ctx.max_level == 24
    assert ctx.log_qp <= 1747
    rng = np.random.default_rng(16)
    x = rng.uniform(-1, 1, ctx.slots)
    y = rng.uniform(-1, 1, ctx.slots)
    cx, cy = ctx.encrypt(x), ctx.encrypt(y)
    assert bits(ctx.decrypt(cx), x) >= 19

    # multiply + relinearize + rescale
    prod = cx * cy
    assert prod.level == ctx.max_level - 1
    assert prod.scale == pytest.approx(ctx.scale_at(prod.level), rel=1e-9)
    assert bits(ctx.decrypt(prod), x * y) >= 19

    # the same through the low-level steps
    eng = ctx._engine
    low = eng.rescale(eng.relinearize(eng.multiply_no_relin(cx._ct, cy._ct)))
    assert low.level == ctx.max_level - 1
    got = eng.decrypt(low).reshape(-1)[: ctx.slots].real
    assert bits(got, x * y) >= 19

    # rotations, plain and hoisted
    assert bits(ctx.decrypt(cx.rotate(1)), np.roll(x, -1)) >= 19
    r1, r3 = cx.rotate_many([1, -3])
    assert bits(ctx.decrypt(r1), np.roll(x, -1)) >= 19
    assert bits(ctx.decrypt(r3), np.roll(x, 3)) >= 19
    assert bits(ctx.decrypt(prod.rotate(-3)), np.roll(x * y, 3)) >= 19


@pytest.mark.slow
def test_n16_scale_and_lowest_levels():
    """Every level of the n16 chain keeps the scale near 2^40, so the lowest
    levels hold the message: bring a fresh ciphertext to level 1, multiply."""
    ctx = ht.Context.from_preset("n16", seed=2025)
    for level in range(ctx.max_level + 1):
        assert abs(np.log2(ctx.scale_at(level)) - 40) < 0.5, f"level {level}: 2^{np.log2(ctx.scale_at(level)):.3f}"
    x = np.linspace(-1, 1, ctx.slots)
    low = ctx.encrypt(x).level_to(1)
    assert bits(ctx.decrypt(low), x) >= 19
    sq = low * low
    assert sq.level == 0
    assert bits(ctx.decrypt(sq), x * x) >= 19
