"""Device-resident ciphertexts (cpp/ckks/resident): residues in a backend's
memory, every operation a sequence of backend calls.

On "cpu" the residues live in the CPU backend's memory (``_core.device_upload``)
and run through the backend interface: the path a GPU runs, compared bit for
bit with the host evaluator. "cuda:0" runs the same tests where a GPU is
present and skips cleanly elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core, cuda

from conftest import DEVICES, bits, encrypted_pair, resident



def same_limbs(host: ht.CipherTensor, dev: ht.CipherTensor) -> bool:
    back = dev.to("cpu")
    assert isinstance(back._ct, _core.Ciphertext)
    assert (back.level, back.scale) == (host.level, host.scale)
    return np.array_equal(back.limbs(), host.limbs())


@pytest.fixture
def pair(toy_ctx, rng):
    return encrypted_pair(toy_ctx, rng, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_resident_ops_match_the_host_bit_for_bit(toy_ctx, pair, device, rng):
    x, y, X, Y = pair
    dX, dY = resident(X, device), resident(Y, device)
    assert dX.device == device and isinstance(dX._ct, _core.DeviceCiphertext)
    w = rng.uniform(-1, 1, x.shape)
    W = toy_ctx.encode(w, purpose="multiply")
    eng = toy_ctx._engine
    cases = {
        "add": (X + Y, dX + dY),
        "sub": (X - Y, dX - dY),
        "neg": (-X, -dX),
        "mul_plain": (X * W, dX * W),
        "level_to": (X.level_to(2), dX.level_to(2)),
        "add across levels": (X + Y.level_to(3), dX + dY.level_to(3)),
    }
    for name, (h, d) in cases.items():
        assert d.device == device, name
        assert same_limbs(h, d), name
    # the size-3 product and its rescale (the host's relinearize-free path)
    h3, d3 = eng.multiply_no_relin(X._ct, Y._ct), eng.multiply_no_relin(dX._ct, dY._ct)
    assert np.array_equal(h3.limbs(), _core.device_download(d3).limbs())
    hr, dr = eng.rescale(h3), eng.rescale(d3)
    assert np.array_equal(hr.limbs(), _core.device_download(dr).limbs())
    assert hr.level == dr.level == X.level - 1 and hr.scale == dr.scale


@pytest.mark.parametrize("device", DEVICES)
def test_resident_circuit_precision(toy_ctx, pair, device, rng):
    x, y, X, Y = pair
    w = rng.uniform(-1, 1, x.shape)
    dX, dY = resident(X, device), resident(Y, device)
    out = (dX + dY) * toy_ctx.encode(w, purpose="multiply") - dX.level_to(X.level - 1)
    assert out.device == device
    ref = (x + y) * w - x
    assert bits(toy_ctx.decrypt(out), ref) >= 20  # decrypt copies the residues back
    assert bits(toy_ctx.decrypt(out.to("cpu")), ref) >= 20


@pytest.mark.parametrize("device", DEVICES)
def test_host_and_device_memory_do_not_mix(toy_ctx, pair, device):
    _, _, X, Y = pair
    dX = resident(X, device)
    with pytest.raises(ValueError, match="different places"):
        dX + Y  # host and backend memory do not mix silently
    with pytest.raises(ValueError, match="different places"):
        dX * Y


def test_to_moves_and_keeps_metadata(toy_ctx, rng):
    torch = pytest.importorskip("torch")
    v = torch.tensor(rng.uniform(-1, 1, 40), dtype=torch.float32)
    X = toy_ctx.encrypt(v)
    assert X.device == X.result_device == torch.device("cpu")
    assert X.to("cpu") is X and X.to(torch.device("cpu")) is X
    dX = resident(X, "cpu")
    back = dX.to("cpu")
    assert back is not dX and isinstance(back._ct, _core.Ciphertext)
    assert np.array_equal(back.limbs(), X.limbs())
    assert back.result_device == torch.device("cpu") and back.dtype == torch.float32
    assert back.value_range == X.value_range
    out = toy_ctx.decrypt(dX)
    assert isinstance(out, torch.Tensor) and bits(out.double().numpy(), v.double().numpy()) >= 20


def test_context_device_is_where_encrypt_puts_ciphertexts(toy_ctx):
    assert toy_ctx.device == "cpu" and toy_ctx.public().device == "cpu"
    assert isinstance(toy_ctx.encrypt(np.ones(3))._ct, _core.Ciphertext)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.is_available(), reason="no usable CUDA device")
def test_cuda_context_keeps_ciphertexts_on_the_device(rng):
    ctx = ht.Context.from_preset("toy-insecure", seed=3, device="cuda:0")
    v = rng.uniform(-1, 1, 64)
    X = ctx.encrypt(v)
    assert ctx.device == "cuda:0" and X.device == "cuda:0"
    Y = (X + X) * ctx.encode(np.full(64, 0.5), purpose="multiply")
    assert Y.device == "cuda:0"
    assert bits(ctx.decrypt(Y), v) >= 20


def test_upload_refuses_bad_devices(toy_ctx):
    ct = toy_ctx.encrypt(np.ones(2))._ct
    with pytest.raises(ValueError, match="unknown device"):
        _core.device_upload(ct, "gpu")
    if not cuda.is_compiled():
        with pytest.raises(RuntimeError, match="HETENSOR_CUDA=ON"):
            _core.device_upload(ct, "cuda:0")
