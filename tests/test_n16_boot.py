"""Bootstrapping at the secure n16-boot preset (N = 2^16, log QP 1746): slow, run
with ``pytest -m slow``. Key generation takes about a minute and 6.4 GiB, one
bootstrap about 45 s on one core; the process peaks near 12 GB."""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from conftest import bits


@pytest.mark.slow
def test_n16_boot_restores_random_values_with_nine_levels_left():
    ctx = ht.Context.from_preset("n16-boot", bootstrap=True, seed=2026)
    assert ctx.params_secure and ctx.ring_degree == 2**16 and ctx.log_qp <= 1747
    assert ctx.fresh_level >= 9
    rng = np.random.default_rng(26)
    x = rng.uniform(-1, 1, ctx.slots)
    out = ctx.encrypt(x).level_to(0).bootstrap()
    assert out.level == ctx.fresh_level
    assert out.scale == pytest.approx(ctx.scale_at(out.level), rel=1e-9)
    b = bits(ctx.decrypt(out), x)
    print(f"n16-boot bootstrap precision: {b:.1f} bits")
    assert b >= 20
    # The refreshed ciphertext computes: one multiply at the fresh level.
    y = ctx.decrypt(out * out)
    assert bits(y, x * x) >= 19
