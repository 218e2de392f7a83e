"""The modulus chain and the precision of the presets at their real sizes.

The scale of each level is s_{l-1} = s_l^2 / q_l; the chain primes must keep
it next to 2^scale_bits at every level, or the lowest levels cannot hold the
message (q_0 = 2^60 holds |x| < 2^(60 - log2 s_0 - 1)). Secure presets n14
and n15 are cheap enough for the default run; n16 is in test_n16.py (slow).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

# (log_n, levels): the presets' chains, plus long chains at large N (n16 has 24
# levels at N = 2^16), built with one digit and one special prime so that key
# generation stays cheap; the chain primes do not depend on dnum or P.
CHAINS = [(12, 6), (13, 10), (14, 7), (15, 15), (14, 24), (15, 24), (16, 24)]


@pytest.fixture(scope="module", params=CHAINS, ids=[f"N=2^{n},L={l}" for n, l in CHAINS])
def chain_ctx(request):
    log_n, levels = request.param
    return ht.Context.from_params(log_n=log_n, levels=levels, dnum=1, special_primes=1,
                                  allow_insecure=True, seed=31)


def test_scale_stays_near_nominal_at_every_level(chain_ctx):
    drift = {l: math.log2(chain_ctx.scale_at(l)) - 40 for l in range(chain_ctx.max_level + 1)}
    worst = max(drift, key=lambda l: abs(drift[l]))
    assert abs(drift[worst]) < 0.5, (
        f"scale at level {worst} is 2^{40 + drift[worst]:.3f} instead of about 2^40 "
        f"(chain primes {[int(q).bit_length() for q in chain_ctx._engine.q]})"
    )


def test_every_level_is_reachable(chain_ctx):
    x = np.linspace(-1, 1, chain_ctx.slots)
    ct = chain_ctx.encrypt(x, symmetric=True)
    for level in sorted({chain_ctx.max_level - 1, chain_ctx.max_level // 2, 1, 0}):
        low = ct.level_to(level)
        assert low.level == level
        assert bits(chain_ctx.decrypt(low), x) >= 20, f"level {level}"


@pytest.fixture(scope="module", params=["n14", "n15"])
def secure_ctx(request):
    return ht.Context.from_preset(request.param, rotations=[1, -3], seed=15)


def test_secure_preset_multiply_and_rotation_precision(secure_ctx):
    ctx = secure_ctx
    rng = np.random.default_rng(1415)
    x = rng.uniform(-1, 1, ctx.slots)
    y = rng.uniform(-1, 1, ctx.slots)
    cx, cy = ctx.encrypt(x), ctx.encrypt(y)
    prod = cx * cy
    assert bits(ctx.decrypt(prod), x * y) >= 20
    assert bits(ctx.decrypt(cx.rotate(1)), np.roll(x, -1)) >= 20
    assert bits(ctx.decrypt(cx.rotate(-3)), np.roll(x, 3)) >= 20
    r1, r3 = cx.rotate_many([1, -3])
    assert bits(ctx.decrypt(r1), np.roll(x, -1)) >= 20
    assert bits(ctx.decrypt(r3), np.roll(x, 3)) >= 20
    assert bits(ctx.decrypt(prod.rotate(1)), np.roll(x * y, -1)) >= 20


def test_secure_preset_chain_to_level_zero(secure_ctx):
    ctx = secure_ctx
    x = np.linspace(-1, 1, ctx.slots)
    low = ctx.encrypt(x).level_to(1)
    got = ctx.decrypt(low * low)
    assert bits(got, x * x) >= 20
