"""Slot rotations, hoisted rotations and conjugation against np.roll / np.conj.

rotate(k): out[i] = in[(i + k) mod slots] over the full slot vector of each
ciphertext (encrypt zero-pads), i.e. np.roll(padded, -k) per ciphertext.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from conftest import TOY_ROTATIONS, bits, rotated_reference

ROT_BITS = 21  # public-key input ~2^-25, key switching adds little


def large_steps(slots):
    """Steps outside [0, slots) that reduce to keys the toy context has."""
    return [slots + 3, -slots - 1, 2 * slots + 7, -3 * slots + 100, 5 * slots - 5]


@pytest.mark.parametrize("k", list(TOY_ROTATIONS) + [0])
def test_rotate_full_slot_vector(toy_ctx, rng, k):
    x = rng.uniform(-1, 1, toy_ctx.slots)
    ct = toy_ctx.encrypt(x)
    r = ct.rotate(k)
    assert r.level == ct.level and r.scale == ct.scale and r.shape == ct.shape
    assert bits(toy_ctx.decrypt(r), np.roll(x, -k)) >= ROT_BITS


def test_rotate_large_steps(toy_ctx, rng):
    slots = toy_ctx.slots
    x = rng.uniform(-1, 1, slots)
    ct = toy_ctx.encrypt(x)
    for k in large_steps(slots):
        assert bits(toy_ctx.decrypt(ct.rotate(k)), np.roll(x, -k)) >= ROT_BITS, f"step {k}"
    # a multiple of slots is the identity
    for k in (slots, -slots, 4 * slots):
        assert bits(toy_ctx.decrypt(ct.rotate(k)), x) >= ROT_BITS


@pytest.mark.parametrize("k", [1, -1, 3, -5, 100])
def test_rotate_partial_tensor_brings_in_zero_padding(toy_ctx, rng, k):
    x = rng.uniform(-1, 1, (3, 4))  # 12 of 2048 slots
    got = toy_ctx.decrypt(toy_ctx.encrypt(x).rotate(k))
    ref = rotated_reference(x, k, toy_ctx.slots)
    assert got.shape == (3, 4)
    assert bits(got, ref) >= ROT_BITS


@pytest.mark.parametrize("k", [1, -1, 7, 1000])
def test_rotate_batch_rotates_each_ciphertext(toy_ctx, rng, k):
    size = 2 * toy_ctx.slots + 9
    x = rng.uniform(-1, 1, size)
    ct = toy_ctx.encrypt(x)
    assert ct.num_ciphertexts == 3
    r = ct.rotate(k)
    assert r.num_ciphertexts == 3
    assert bits(toy_ctx.decrypt(r), rotated_reference(x, k, toy_ctx.slots)) >= ROT_BITS


def test_rotate_composes(toy_ctx, rng):
    x = rng.uniform(-1, 1, toy_ctx.slots)
    ct = toy_ctx.encrypt(x)
    got = toy_ctx.decrypt(ct.rotate(1).rotate(2).rotate(-1).rotate(7))
    assert bits(got, np.roll(x, -9)) >= ROT_BITS - 1


def test_rotate_after_multiply_at_lower_level(toy_ctx, rng):
    x, y = rng.uniform(-1, 1, toy_ctx.slots), rng.uniform(-1, 1, toy_ctx.slots)
    prod = toy_ctx.encrypt(x) * toy_ctx.encrypt(y)
    r = prod.level_to(0).rotate(3)
    assert r.level == 0
    assert bits(toy_ctx.decrypt(r), np.roll(x * y, -3)) >= 20


def test_rotate_complex(toy_ctx, rng):
    z = rng.uniform(-1, 1, toy_ctx.slots) + 1j * rng.uniform(-1, 1, toy_ctx.slots)
    got = toy_ctx.decrypt(toy_ctx.encrypt(z).rotate(-5))
    assert got.dtype == np.complex128
    assert bits(got, np.roll(z, 5)) >= ROT_BITS


def test_sum_by_rotations(toy_ctx, rng):
    """x + rot(x, 1) + rot(x, 2) + rot(x, 3): a sliding window sum."""
    x = rng.uniform(-1, 1, toy_ctx.slots)
    ct = toy_ctx.encrypt(x)
    acc = ct + ct.rotate(1) + ct.rotate(2) + ct.rotate(3)
    ref = x + np.roll(x, -1) + np.roll(x, -2) + np.roll(x, -3)
    assert bits(toy_ctx.decrypt(acc), ref) >= ROT_BITS - 2


# -- hoisting -----------------------------------------------------------------------------


def test_hoisted_rotations_equal_plain_ones(toy_ctx, rng):
    x = rng.uniform(-1, 1, toy_ctx.slots)
    ct = toy_ctx.encrypt(x)
    steps = [1, 2, 3, 7, -1, -5, 100, 1000, 0, toy_ctx.slots + 3, 1]
    many = ct.rotate_many(steps)
    assert isinstance(many, list) and len(many) == len(steps)
    for k, h in zip(steps, many):
        assert isinstance(h, ht.CipherTensor)
        assert h.level == ct.level and h.shape == ct.shape
        plain = toy_ctx.decrypt(ct.rotate(k))
        hoisted = toy_ctx.decrypt(h)
        assert bits(hoisted, np.roll(x, -k)) >= ROT_BITS, f"step {k}"
        assert bits(hoisted, plain) >= ROT_BITS + 2, f"hoisted and plain rotations by {k} differ"


def test_hoisted_rotations_on_a_batch_at_lower_level(toy_ctx, rng):
    size = toy_ctx.slots + 17
    x = rng.uniform(-1, 1, size)
    ct = toy_ctx.encrypt(x).level_to(3)
    steps = [-1, 3, 1000]
    for k, h in zip(steps, ct.rotate_many(steps)):
        assert h.level == 3 and h.num_ciphertexts == 2
        assert bits(toy_ctx.decrypt(h), rotated_reference(x, k, toy_ctx.slots)) >= ROT_BITS


def test_hoisted_empty_list(toy_ctx, rng):
    ct = toy_ctx.encrypt(rng.uniform(-1, 1, 4))
    assert ct.rotate_many([]) == []


# -- conjugation --------------------------------------------------------------------------


def test_conjugate_complex(toy_ctx, rng):
    z = rng.uniform(-1, 1, 300) + 1j * rng.uniform(-1, 1, 300)
    ct = toy_ctx.encrypt(z)
    c = ct.conjugate()
    assert c.level == ct.level and c.is_complex
    got = toy_ctx.decrypt(c)
    assert got.dtype == np.complex128
    assert bits(got, np.conj(z)) >= ROT_BITS
    # real and imaginary parts from z and conj(z)
    re = toy_ctx.decrypt((ct + c) * 0.5)
    assert bits(re, z.real.astype(np.complex128)) >= 20


def test_conjugate_real_is_identity(toy_ctx, rng):
    x = rng.uniform(-1, 1, 50)
    got = toy_ctx.decrypt(toy_ctx.encrypt(x).conjugate())
    assert bits(got, x) >= ROT_BITS


# -- missing keys -------------------------------------------------------------------------


def test_missing_key_single_rotation(rot1_ctx, rng):
    ct = rot1_ctx.encrypt(rng.uniform(-1, 1, 8))
    with pytest.raises(ht.MissingKeyError) as info:
        ct.rotate(2)
    assert info.value.steps == [2]
    assert "2" in str(info.value) and "generate_rotation_keys" in str(info.value)
    assert isinstance(info.value, KeyError)
    ct.rotate(1)  # the key that exists works
    ct.rotate(rot1_ctx.slots + 1)  # and so does an equivalent large step
    ct.rotate(0)  # no key needed


def test_missing_keys_hoisted_lists_exactly_the_missing_steps(rot1_ctx, rng):
    ct = rot1_ctx.encrypt(rng.uniform(-1, 1, 8))
    with pytest.raises(ht.MissingKeyError) as info:
        ct.rotate_many([1, 5, 7])
    assert info.value.steps == [5, 7]
    with pytest.raises(ht.MissingKeyError) as info:
        ct.rotate_many([5, 0, 1, 5, -3, 7])
    assert info.value.steps == [5, -3, 7]


def test_missing_key_then_generate_from_error(small_ctx, rng):
    x = rng.uniform(-1, 1, small_ctx.slots)
    ct = small_ctx.encrypt(x)
    with pytest.raises(ht.MissingKeyError) as info:
        ct.rotate_many([4, -2])
    small_ctx.generate_rotation_keys(info.value.steps)
    r4, rm2 = ct.rotate_many([4, -2])
    assert bits(small_ctx.decrypt(r4), np.roll(x, -4)) >= ROT_BITS
    assert bits(small_ctx.decrypt(rm2), np.roll(x, 2)) >= ROT_BITS


def test_missing_conjugation_key(rot1_ctx, rng):
    ct = rot1_ctx.encrypt(rng.uniform(-1, 1, 8) + 0.5j)
    with pytest.raises(ht.MissingKeyError) as info:
        ct.conjugate()
    assert info.value.steps == []
    assert "conjugat" in str(info.value)
