"""Diagonal linear transforms (cpp/circuits/lintrans) on device-resident ciphertexts.

The resident form runs the transform's one sequence of backend calls, with the
plaintext products as key-switching inner products on the backend (the host
form uses its cache-blocked product over the same integers), so the result must
equal the host's word for word; each case also decrypts against the map in
float64. "cpu" puts the residues in the CPU backend's memory; "cuda:0" runs the
same cases where a GPU is present and skips cleanly elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core, cuda
from hetensor.boot import dft_factors

from conftest import DEVICES, bits, resident


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset("toy-insecure", seed=67)


def _reference(diags, x):
    return sum(v * np.roll(x, -d, axis=-1) for d, v in diags.items())


def _random_map(rng, slots, steps):
    return {d: (rng.uniform(-1, 1, slots) + 1j * rng.uniform(-1, 1, slots)) / len(steps) for d in steps}


def _same(host: _core.Ciphertext, dev: _core.DeviceCiphertext, device: str) -> None:
    assert isinstance(dev, _core.DeviceCiphertext) and dev.device == device
    back = _core.device_download(dev)
    assert (back.level, back.scale, back.size, back.bound) == (host.level, host.scale, host.size, host.bound)
    assert np.array_equal(back.limbs(), host.limbs())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("extended", [True, False])
def test_resident_transform_matches_the_host(ctx, device, extended):
    rng = np.random.default_rng(5 + extended)
    n = ctx.slots
    diags = _random_map(rng, n, [0, 1, 2, 5, 17, 64, 300, n - 1, n - 40])
    eng = ctx._engine
    for level in (1, 4):
        lt = _core.encode_linear_transform(eng, diags, level, 0, 0.0, extended)
        ctx.generate_rotation_keys(lt.rotation_steps())
        x = rng.uniform(-1, 1, (2, n)) + 1j * rng.uniform(-1, 1, (2, n))  # a batch of two
        X = ctx.encrypt(x)
        host = _core.apply_linear_transform(eng, X.level_to(level)._ct, lt)
        # From the top level: brought down to the transform's level on the device.
        dev = _core.apply_linear_transform(eng, resident(X, device)._ct, lt)
        _same(host, dev, device)
        assert dev.level == level - 1
        assert bits(ctx.decrypt(X._like(dev, True)), _reference(diags, x)) >= 22


@pytest.mark.parametrize("device", DEVICES)
def test_long_giant_groups_and_a_dft_chain_match_the_host(ctx, device):
    """n1 = 64 puts 40 diagonals in one giant group (more than the inner
    product's 32 terms, so its partial sums are added); then SlotToCoeff's
    three factors in a row, each at its level, as bootstrapping runs them."""
    rng = np.random.default_rng(3)
    n = ctx.slots
    eng = ctx._engine
    diags = _random_map(rng, n, list(range(40)) + [n - 3])
    lt = _core.encode_linear_transform(eng, diags, 3, 64, 0.0, True)
    assert lt.n1 == 64 and list(lt.giants) == [0, n - 64]
    ctx.generate_rotation_keys(lt.rotation_steps())
    x = rng.uniform(-1, 1, n) + 1j * rng.uniform(-1, 1, n)
    X = ctx.encrypt(x).level_to(3)
    host = _core.apply_linear_transform(eng, X._ct, lt)
    dev = _core.apply_linear_transform(eng, resident(X, device)._ct, lt)
    _same(host, dev, device)
    assert bits(ctx.decrypt(X._like(dev, True)), _reference(diags, x)) >= 20

    h, d, ref = X._ct, resident(X, device)._ct, x
    for k, mat in enumerate(dft_factors(n, 3, inverse=False)):
        lt = _core.encode_linear_transform(eng, mat, 3 - k, 0, 0.0, k != 2)
        ctx.generate_rotation_keys(lt.rotation_steps())
        h, d = _core.apply_linear_transform(eng, h, lt), _core.apply_linear_transform(eng, d, lt)
        ref = _reference(mat, ref)
        _same(h, d, device)
    m = float(np.max(np.abs(ref)))
    assert bits(ctx.decrypt(X._like(d, True)) / m, ref / m) >= 22


@pytest.mark.parametrize("device", DEVICES)
def test_resident_transform_refuses_bad_input(ctx, other_ctx, device, rng):
    n = ctx.slots
    eng = ctx._engine
    lt = _core.encode_linear_transform(eng, {0: np.ones(n, dtype=complex), 1: np.ones(n, dtype=complex)}, 3)
    ctx.generate_rotation_keys(lt.rotation_steps())
    X = resident(ctx.encrypt(rng.uniform(-1, 1, n)), device)
    with pytest.raises(ValueError, match="encoded for level 3"):
        _core.apply_linear_transform(eng, X.level_to(2)._ct, lt)
    with pytest.raises(ValueError, match="scale differs"):
        _core.apply_linear_transform(eng, X.level_to(3)._ct.with_scale(X.scale * 2, 1.0), lt)
    with pytest.raises(ValueError, match="relinearize"):
        _core.apply_linear_transform(eng, eng.multiply_no_relin(X._ct, X._ct), lt)
    with pytest.raises(ValueError, match="another context"):
        _core.apply_linear_transform(eng, _core.device_upload(other_ctx.encrypt(np.ones(n))._ct, device), lt)
    bare = ht.Context.from_preset("toy-insecure", seed=68)
    lt7 = _core.encode_linear_transform(bare._engine, {7: np.ones(n, dtype=complex)}, 3)
    with pytest.raises(ht.MissingKeyError):
        _core.apply_linear_transform(bare._engine, resident(bare.encrypt(np.ones(n)), device)._ct, lt7)
    with pytest.raises(TypeError):
        _core.apply_linear_transform(eng, X._ct, None)


def test_the_cpu_backend_reads_the_diagonals_in_place(ctx):
    n = ctx.slots
    lt = _core.encode_linear_transform(ctx._engine, {0: np.ones(n, dtype=complex)}, 2)
    _core.apply_linear_transform(ctx._engine, resident(ctx.encrypt(np.ones(n)), "cpu")._ct, lt)
    assert lt.device_bytes == 0


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.is_available(), reason="no usable CUDA device")
def test_cuda_diagonals_are_uploaded_once(ctx, rng):
    n = ctx.slots
    lt = _core.encode_linear_transform(ctx._engine, _random_map(rng, n, [0, 1, 2]), 2)
    ctx.generate_rotation_keys(lt.rotation_steps())
    X = resident(ctx.encrypt(rng.uniform(-1, 1, n)), "cuda:0")
    _core.apply_linear_transform(ctx._engine, X._ct, lt)
    once = lt.device_bytes
    assert once > 0
    _core.apply_linear_transform(ctx._engine, X._ct, lt)
    assert lt.device_bytes == once
