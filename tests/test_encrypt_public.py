"""Public-key encryption computes (u*b + e0 + p*m, u*a + e1) over Q and one
special prime p and divides by p with rounding; e0, e1 and the message join
inside that division in the coefficient domain (no NTTs of their own). What
is left of the noise is rounding: these tests hold it to that, at every level
and for batches, against float64."""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

# Rounding noise only (r0 + r1*s, |r| <= 1/2): about 2^-28 of a slot at scale
# 2^40, N = 2^12; u*e + e0 + e1*s (~2^9) would leave about 2^-22.
PUBLIC_BITS = 26


@pytest.mark.parametrize("preset", ["toy-insecure", "toy-boot-insecure"])
def test_public_encryption_leaves_only_rounding_noise(preset, rng):
    ctx = ht.Context.from_preset(preset)
    x = rng.uniform(-1, 1, ctx.slots)
    for level in sorted({ctx.max_level, ctx.max_level // 2, 0}):
        ct = ht.CipherTensor._wrap(ctx, ctx._engine.encrypt(x.astype(np.complex128).reshape(1, -1), False, level),
                                   x.shape, False, False)
        assert ct.level == level
        assert bits(ctx.decrypt(ct), x) >= PUBLIC_BITS


def test_public_encryption_of_a_batch(toy_ctx, rng):
    x = rng.uniform(-1, 1, 3 * toy_ctx.slots + 5)     # four ciphertexts in one batch
    got = toy_ctx.decrypt(toy_ctx.encrypt(x))
    assert bits(got, x) >= PUBLIC_BITS


def test_public_encryption_of_large_and_complex_values(toy_ctx, rng):
    # Large coefficients (|x| scale near 2^50) are reduced modulo each prime exactly.
    big = rng.uniform(-1000, 1000, toy_ctx.slots)
    assert bits(toy_ctx.decrypt(toy_ctx.encrypt(big)) / 1000, big / 1000) >= PUBLIC_BITS - 1
    z = rng.uniform(-1, 1, 100) + 1j * rng.uniform(-1, 1, 100)
    assert bits(toy_ctx.decrypt(toy_ctx.encrypt(z)), z) >= PUBLIC_BITS


def test_public_encryption_is_randomised_and_seeded_runs_repeat(rng):
    x = rng.uniform(-1, 1, 64)
    a = ht.Context.from_preset("toy-insecure", seed=11)
    b = ht.Context.from_preset("toy-insecure", seed=11)
    ca, cb = a.encrypt(x), b.encrypt(x)
    assert ca.to_bytes(compress=False) == cb.to_bytes(compress=False)   # reproducible under a seed
    assert a.encrypt(x).to_bytes(compress=False) != ca.to_bytes(compress=False)  # fresh randomness per call
    # Products of public-key ciphertexts keep the float64 result (the noise is small).
    y = rng.uniform(-1, 1, 64)
    assert bits(a.decrypt(a.encrypt(x) * a.encrypt(y)), x * y) >= 20
