"""Device arguments and zero-copy export of ciphertext residues.

Parametrized over the devices hetensor knows: "cpu" everywhere, "cuda:0"
where the CUDA backend is compiled and a GPU is present (skipped otherwise).
Without a GPU every CUDA request raises an exception that names the reason.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import hetensor as ht
from hetensor import cuda

from conftest import bits

DEVICES = ["cpu", pytest.param("cuda:0", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not cuda.is_available(), reason="no usable CUDA device")])]


@pytest.mark.parametrize("device", DEVICES)
def test_context_on_device(device, rng):
    ctx = ht.Context.from_preset("toy-insecure", seed=3, device=device)
    assert ctx.device == device
    v = rng.uniform(-1, 1, 64)
    x = ctx.encrypt(v)
    assert x.device == device and x.to(device) is x
    y = x + x  # computed where x lives
    assert y.device == device
    assert bits(ctx.decrypt(y.to("cpu") * y.to("cpu")), 4 * v * v) >= 20


def test_device_queries():
    n = cuda.device_count()
    assert isinstance(n, int) and n >= 0
    assert cuda.is_available() == ht.cuda_available()
    assert cuda.is_compiled() == ht._core.cuda_compiled
    if not cuda.is_compiled():
        assert n == 0
        with pytest.raises(RuntimeError):
            cuda.device_name(0)
    with pytest.raises(TypeError):
        cuda.device_name("0")


@pytest.mark.skipif(cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_request_without_gpu_says_why(toy_ctx, device):
    want = "without the CUDA backend" if not cuda.is_compiled() else "no such usable CUDA device"
    with pytest.raises(RuntimeError, match=want):
        ht.Context.from_preset("toy-insecure", device=device)
    with pytest.raises(RuntimeError, match=want):
        toy_ctx.encrypt(np.zeros(4)).to(device)


@pytest.mark.parametrize("bad,err", [("gpu", ValueError), ("cuda:x", ValueError), (0, TypeError), (None, TypeError)])
def test_bad_device_arguments(bad, err):
    with pytest.raises(err, match="device"):
        ht.Context.from_preset("toy-insecure", device=bad)


def test_torch_device_objects_are_accepted():
    torch = pytest.importorskip("torch")
    assert cuda.parse_device(torch.device("cpu")) == "cpu"


def test_limbs_export_through_dlpack(toy_ctx, rng):
    torch = pytest.importorskip("torch")
    v = rng.uniform(-1, 1, 100)
    x = toy_ctx.encrypt(v) * 0.5
    limbs = x.limbs()
    assert limbs.shape == (1, 2, x.level + 1, toy_ctx.ring_degree) and limbs.dtype == np.uint64
    assert not limbs.flags.writeable
    t = torch.from_dlpack(limbs)
    assert t.dtype == torch.uint64 and tuple(t.shape) == limbs.shape
    assert t.data_ptr() == limbs.ctypes.data  # zero-copy
    a = np.from_dlpack(limbs)
    assert np.shares_memory(a, limbs)
    q = np.asarray(toy_ctx._engine.q[: x.level + 1], dtype=np.uint64).reshape(-1, 1)
    assert np.all(limbs < q)  # canonical residues, row i modulo q_i
    # the residues are the ciphertext: rebuilt from an exported copy, it decrypts the same
    y = x._like(x._ct.with_limbs(t.numpy().copy(), toy_ctx._engine.q, float(x._ct.bound)))
    assert np.array_equal(toy_ctx.decrypt(y), toy_ctx.decrypt(x))
    assert bits(toy_ctx.decrypt(y), v * 0.5) >= 25
    before = limbs.copy()
    del x, y, t, a
    gc.collect()
    assert np.array_equal(limbs, before)  # the view keeps the ciphertexts alive
