"""Diagonal linear transforms (cpp/circuits/lintrans): y[i] = sum_d diag_d[i] x[(i + d) mod slots],
with the diagonals over Q*P (double hoisting, the default) or over Q only (``extended=False``),
against the same map in float64 (bits asserted)."""

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core
from hetensor.boot import dft_factors

from conftest import bits


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset("toy-insecure", seed=61)


def _reference(diags, x):
    return sum(v * np.roll(x, -d) for d, v in diags.items())


def _random_map(rng, slots, steps):
    return {d: (rng.uniform(-1, 1, slots) + 1j * rng.uniform(-1, 1, slots)) / len(steps) for d in steps}


@pytest.mark.parametrize("level", [1, 3, 6])
@pytest.mark.parametrize("extended", [True, False])
def test_transform_matches_float64(ctx, level, extended):
    rng = np.random.default_rng(level)
    n = ctx.slots
    diags = _random_map(rng, n, [0, 1, 2, 5, 17, 64, 300, n - 1, n - 40])
    lt = _core.encode_linear_transform(ctx._engine, diags, level, 0, 0.0, extended)
    assert lt.extended is extended and lt.level == level and lt.diagonals == len(diags)
    ctx.generate_rotation_keys(lt.rotation_steps())
    x = rng.uniform(-1, 1, n) + 1j * rng.uniform(-1, 1, n)
    ct = ctx.encrypt(x).level_to(level)
    out = _core.apply_linear_transform(ctx._engine, ct._ct, lt)
    assert out.level == level - 1 and out.scale == pytest.approx(ctx.scale_at(level - 1), rel=1e-12)
    got = ctx.decrypt(ct._like(out, True))
    assert bits(got, _reference(diags, x)) >= 22


def test_both_forms_agree_on_the_dft_factors(ctx):
    """SlotToCoeff's factors at levels 3..1 (the bootstrap's stc_first path),
    each encoded both ways: the same steps and the same values to the noise."""
    rng = np.random.default_rng(7)
    n = ctx.slots
    x = rng.uniform(-1, 1, n) + 1j * rng.uniform(-1, 1, n)
    a = b = ctx.encrypt(x).level_to(3)
    ref = x
    for k, mat in enumerate(dft_factors(n, 3, inverse=False)):
        lv = 3 - k
        ext = _core.encode_linear_transform(ctx._engine, mat, lv)
        low = _core.encode_linear_transform(ctx._engine, mat, lv, 0, 0.0, False)
        assert ext.rotation_steps() == low.rotation_steps() and ext.n1 == low.n1
        ctx.generate_rotation_keys(ext.rotation_steps())
        a = a._like(_core.apply_linear_transform(ctx._engine, a._ct, ext), True)
        b = b._like(_core.apply_linear_transform(ctx._engine, b._ct, low), True)
        ref = _reference(mat, ref)
        m = float(np.max(np.abs(ref)))  # the DFT grows the values: relative precision
        got_a, got_b = ctx.decrypt(a) / m, ctx.decrypt(b) / m
        print(f"level {lv}: extended {bits(got_a, ref / m):.1f} bits, Q only {bits(got_b, ref / m):.1f} bits")
        assert bits(got_b, got_a) >= 26
        assert bits(got_b, ref / m) >= bits(got_a, ref / m) - 1.0 >= 24


def test_a_transform_refuses_a_lower_input_and_an_other_scale(ctx):
    n = ctx.slots
    lt = _core.encode_linear_transform(ctx._engine, {0: np.ones(n, dtype=complex)}, 3, 0, 0.0, False)
    with pytest.raises(ValueError, match="encoded for level 3"):
        _core.apply_linear_transform(ctx._engine, ctx.encrypt(np.ones(n)).level_to(2)._ct, lt)
    odd = ctx.encrypt(np.ones(n)).level_to(3)._ct
    with pytest.raises(ValueError, match="scale differs"):
        _core.apply_linear_transform(ctx._engine, odd.with_scale(odd.scale * 2, 1.0), lt)
