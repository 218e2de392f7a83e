"""The fused key switch (backend/switch_fused.hpp): the passes a GPU runs for
Backend::key_switch, here run in CPU loops over the same kernel bodies
(_core.backend_set_fused_key_switch), must equal the CPU backend's sequence
of coarse ops (today's host key switch) word for word: relinearization, the
relinearize-and-rescale of multiply, single, hoisted and composed rotations,
conjugation, on batches of ciphertexts, on host and resident ciphertexts.
Each case also decrypts against a float64 reference. "cuda:0" runs the GPU's
launches of the same passes where a GPU is present and skips elsewhere.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core

from conftest import DEVICES, bits, resident


@contextmanager
def fused(on: bool = True) -> Iterator[None]:
    before = _core.backend_set_fused_key_switch(on)
    try:
        yield
    finally:
        _core.backend_set_fused_key_switch(before)


@pytest.fixture(scope="module")
def ctx3() -> ht.Context:
    """Three digits and two special primes (alpha = 2), a small ring."""
    return ht.Context.from_params(log_n=10, levels=5, scale_bits=36, first_prime_bits=50, dnum=3,
                                  special_primes=2, special_prime_bits=50, allow_insecure=True,
                                  rotations=STEPS, conjugation=True, seed=5)


def limbs(x: ht.CipherTensor) -> np.ndarray:
    ct = x._ct
    return (_core.device_download(ct) if isinstance(ct, _core.DeviceCiphertext) else ct).limbs()


STEPS = [1, 3, -2]


def switches(ctx: ht.Context, X: ht.CipherTensor, Y: ht.CipherTensor) -> dict:
    eng = ctx._engine
    raw = eng.multiply_no_relin(X._ct, Y._ct)
    steps = STEPS
    out = {
        "multiply": X * Y,
        "relinearize": X._like(eng.relinearize(raw)),
        "rotate": X.rotate(steps[1]),
        "conjugate": X.conjugate(),
    }
    for s, r in zip(steps + [0], X.rotate_many(steps + [0])):
        out[f"hoisted {s}"] = r
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("which", ["toy", "dnum3"])
def test_fused_switch_equals_the_sequence_word_for_word(which, device, ctx3, rng):
    ctx = ctx3 if which == "dnum3" else ht.Context.from_preset("toy-insecure", rotations=STEPS, seed=3,
                                                               conjugation=True)
    x, y = rng.uniform(-1, 1, (2, ctx.slots)), rng.uniform(-1, 1, (2, ctx.slots))
    X, Y = ctx.encrypt(x), ctx.encrypt(y)
    with fused(False):
        want = {k: limbs(v) for k, v in switches(ctx, X, Y).items()}
    with fused(True):
        host = switches(ctx, X, Y)
        dev = switches(ctx, resident(X, device), resident(Y, device))
    assert set(want) == set(host) == set(dev)
    assert all(str(v.device) == device for v in dev.values())
    for name in want:
        assert np.array_equal(limbs(host[name]), want[name]), name
        assert np.array_equal(limbs(dev[name]), want[name]), name
    assert bits(ctx.decrypt(dev["multiply"]), x * y) >= 14
    assert bits(ctx.decrypt(dev["rotate"]), np.roll(x, -3, axis=1)) >= 14
    assert bits(ctx.decrypt(dev["hoisted -2"]), np.roll(x, 2, axis=1)) >= 14
    assert bits(ctx.decrypt(dev["conjugate"]), x) >= 14


@pytest.mark.parametrize("device", DEVICES)
def test_a_batch_is_one_switch_equal_to_ciphertext_by_ciphertext(device, toy_ctx, rng):
    x = rng.uniform(-1, 1, (3, toy_ctx.slots))
    X = toy_ctx.encrypt(x)
    with fused(True):
        whole = resident(X, device).rotate_many([1, -5])
        one = [resident(X[i:i + 1], device) for i in range(3)]
    for r, step in enumerate((1, -5)):
        got = limbs(whole[r])
        for i in range(3):
            with fused(True):
                single = limbs(one[i].rotate(step))
            assert np.array_equal(got[i], single[0]), (step, i)
        assert bits(toy_ctx.decrypt(whole[r]), np.roll(x, -step, axis=1)) >= 18


def test_fused_switch_refuses_a_key_below_the_level():
    ctx = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=9)
    boot = ctx._bootstrapper
    step = min(s for s, lv in boot.key_levels().items() if lv < boot.eval_mod_level)
    eng = ctx._engine
    x = np.random.default_rng(4).uniform(-1, 1, ctx.slots)
    ct = eng.encrypt(np.asarray(x, dtype=complex).reshape(1, -1), False, ctx.max_level)
    with fused(True):
        with pytest.raises(ValueError, match=r"made for levels <= \d+.*generate_rotation_keys"):
            eng.rotate(ct, step)
        with pytest.raises(ValueError, match=r"made for levels <= \d+"):
            eng.rotate(_core.device_upload(ct, "cpu"), step)
    assert _core.backend_set_fused_key_switch(False) is False
