"""IND-CPA-D (Li and Micciancio, Eurocrypt 2021): a decryption handed to
someone else reveals the secret key unless it is noise-flooded.

The attack at a toy size: the attacker holds a ciphertext (c0, c1) at level
0 and its exact decryption. Re-encoding the decrypted values gives back the
integer polynomial M = c0 + c1 s mod q0 (the decoding error is far below
one unit), so s = (M - c0) / c1, one division per NTT point. With
``flood_bits`` the decryption carries a fresh Gaussian of width 2^flood_bits
and the same computation returns garbage."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import hetensor as ht
from conftest import bits
from hostile import first_key_word

N = 1024


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_params(log_n=10, levels=1, scale_bits=40, first_prime_bits=60, allow_insecure=True,
                                  seed=4242)


def _words(data: bytes, item_poly: int, n: int = N) -> list:
    """Limb 0 of polynomial `item_poly` of a level-0 ciphertext/plaintext record."""
    p = 48
    (attrs_len,) = struct.unpack_from("<I", data, p + 28)
    start = p + 32 + attrs_len + 1 + item_poly * n * 8
    return list(struct.unpack_from(f"<{n}Q", data, start))


def _true_secret_limb0(ctx) -> list:
    data = ctx.to_bytes(include_secret_key=True)
    return list(struct.unpack_from(f"<{N}Q", data, first_key_word(data)))


def _recover_secret(ctx, ct, decrypted) -> list:
    """The attacker's computation: only public data, the ciphertext and a decryption."""
    q0 = int(ctx._engine.q[0])
    raw = ct.to_bytes(compress=False)
    c0, c1 = _words(raw, 0), _words(raw, 1)
    m = _words(ctx.encode(decrypted, level=0, purpose="add").to_bytes(), 0)
    return [((mi - a) * pow(b, -1, q0)) % q0 for mi, a, b in zip(m, c0, c1)]


def _message(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, N // 2) + 1j * rng.uniform(-1, 1, N // 2)


def test_exact_decryption_leaks_the_secret_key(ctx):
    ct = ctx.encrypt(_message(1)).level_to(0)
    assert ct.scale == ctx.scale_at(0)
    recovered = _recover_secret(ctx, ct, ctx.decrypt(ct))
    assert recovered == _true_secret_limb0(ctx)


@pytest.mark.parametrize("flood_bits", [10, ht.context.RELEASE_FLOOD_BITS])
def test_flooded_decryption_defeats_the_attack(ctx, flood_bits):
    x = _message(2)
    ct = ctx.encrypt(x).level_to(0)
    out = ctx.decrypt(ct, flood_bits=flood_bits)
    recovered = _recover_secret(ctx, ct, out)
    truth = _true_secret_limb0(ctx)
    assert sum(r == t for r, t in zip(recovered, truth)) <= 2  # chance agreement only
    # the values survive with about 40 - flood_bits - log2(sqrt(N/2)) bits of precision
    assert bits(out, x) > 40 - flood_bits - 4.5 - 4


def test_flooding_is_fresh_each_time(ctx):
    ct = ctx.encrypt(_message(3))
    a, b = ctx.decrypt(ct, flood_bits=12), ctx.decrypt(ct, flood_bits=12)
    assert not np.array_equal(a, b)
    assert np.array_equal(ctx.decrypt(ct), ctx.decrypt(ct))


def test_flood_noise_has_the_requested_width(ctx):
    # In the slots, a coefficient noise of width sigma has width sigma * sqrt(N/2) / scale per component.
    ct = ctx.encrypt(np.zeros(N // 2, complex))
    diffs = np.concatenate([ctx.decrypt(ct, flood_bits=20) - ctx.decrypt(ct) for _ in range(8)])
    expected = 2.0**20 * np.sqrt(N / 2) / ct.scale
    measured = np.std(diffs.real)
    assert 0.9 < measured / expected < 1.1


@pytest.mark.parametrize("bad", [3, 51, float("nan")])
def test_flood_bits_out_of_range(ctx, bad):
    ct = ctx.encrypt([1.0])
    with pytest.raises(ValueError, match="flood_bits"):
        ctx.decrypt(ct, flood_bits=bad)
    with pytest.raises(TypeError, match="flood_bits"):
        ctx.decrypt(ct, flood_bits="20")
