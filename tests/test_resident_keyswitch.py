"""Key switching, scalar and plaintext operations on device-resident
ciphertexts, and the DLPack export of their residues.

The resident evaluator runs ckks/keyswitch's one sequence of backend calls,
as the host evaluator does, so every result must equal the host's word for
word; each case also decrypts against a float64 reference. "cpu" puts the
residues in the CPU backend's memory (the path a GPU runs); "cuda:0" runs
the same cases where a GPU is present and skips cleanly elsewhere.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core, cuda

from conftest import DEVICES, bits, encrypted_pair, resident



def assert_same(host: ht.CipherTensor, dev: ht.CipherTensor, device: str, what: str) -> None:
    assert isinstance(dev._ct, _core.DeviceCiphertext) and str(dev.device) == device, what
    back = _core.device_download(dev._ct)
    assert (back.level, back.scale, back.size, back.bound) == (host._ct.level, host._ct.scale, host._ct.size,
                                                               host._ct.bound), what
    assert np.array_equal(back.limbs(), host.limbs()), what


@pytest.fixture(scope="module")
def compact_ctx():
    """Compact Galois keys (a_j regenerated per use on the host, expanded on a
    device's upload) and keys for +-1, 4, 16 only, so 3 and 5 are composed."""
    return ht.Context.from_preset("toy-insecure", rotations=(1, -1, 4, 16), seed=11, conjugation=True,
                                  compact_keys=True)


@pytest.fixture
def data(toy_ctx, rng):
    return encrypted_pair(toy_ctx, rng, 2)


@pytest.mark.parametrize("device", DEVICES)
def test_products_and_relinearization_match_the_host(toy_ctx, data, device):
    x, y, X, Y = data
    dX, dY = resident(X, device), resident(Y, device)
    eng = toy_ctx._engine
    cases = {
        "multiply": (X * Y, dX * dY, x * y),
        "square": (X * X, dX * dX, x * x),
        "multiply across levels": (X * Y.level_to(3), dX * dY.level_to(3), x * y),
        "x^3": (X * X * X, dX * dX * dX, x ** 3),
    }
    for name, (h, d, ref) in cases.items():
        assert_same(h, d, device, name)
        assert bits(toy_ctx.decrypt(d), ref) >= 18, name
    h3, d3 = eng.multiply_no_relin(X._ct, Y._ct), eng.multiply_no_relin(dX._ct, dY._ct)
    hr, dr = eng.relinearize(h3), eng.relinearize(d3)
    assert dr.size == 2 and dr.level == X.level
    assert np.array_equal(_core.device_download(dr).limbs(), hr.limbs())
    assert bits(toy_ctx.decrypt(X._like(eng.rescale(hr))), x * y) >= 18


@pytest.mark.parametrize("device", DEVICES)
def test_rotations_and_conjugation_match_the_host(toy_ctx, data, device):
    x, _, X, _ = data
    dX = resident(X, device)
    for step in (1, -5, 1000):
        h, d = X.rotate(step), dX.rotate(step)
        assert_same(h, d, device, f"rotate {step}")
        assert bits(toy_ctx.decrypt(d), np.roll(x, -step, axis=1)) >= 20
    steps = [1, 0, 7, 1, 100]  # a rotation by 0 and a repeated step
    hs, ds = X.rotate_many(steps), dX.rotate_many(steps)
    for s, h, d in zip(steps, hs, ds):
        assert_same(h, d, device, f"hoisted {s}")
        assert bits(toy_ctx.decrypt(d), np.roll(x, -s, axis=1)) >= 20
    z = x + 0.5j * np.roll(x, 1, axis=1)
    Z = toy_ctx.encrypt(z)
    h, d = Z.conjugate(), resident(Z, device).conjugate()
    assert_same(h, d, device, "conjugate")
    assert bits(toy_ctx.decrypt(d), np.conj(z)) >= 20


@pytest.mark.parametrize("device", DEVICES)
def test_compact_and_composed_keys_match_the_host(compact_ctx, rng, device):
    x = rng.uniform(-1, 1, compact_ctx.slots)
    X = compact_ctx.encrypt(x)
    dX = resident(X, device)
    for step in (1, 4, 3, 5, -1):  # 3 = 4 - 1 and 5 = 4 + 1: composed from two keys
        h, d = X.rotate(step), dX.rotate(step)
        assert_same(h, d, device, f"rotate {step}")
        assert bits(compact_ctx.decrypt(d), np.roll(x, -step)) >= 20
    hs, ds = X.rotate_many([5, 16, 3]), dX.rotate_many([5, 16, 3])
    for s, h, d in zip([5, 16, 3], hs, ds):
        assert_same(h, d, device, f"hoisted {s}")
    assert_same(X.conjugate(), dX.conjugate(), device, "conjugate")


@pytest.mark.parametrize("device", DEVICES)
def test_scalar_and_plaintext_operands_match_the_host(toy_ctx, data, device, rng):
    x, _, X, _ = data
    dX = resident(X, device)
    w = rng.uniform(-1, 1, x.shape)
    P = toy_ctx.encode(w, purpose="add")
    cases = {
        "+ 0.75": (X + 0.75, dX + 0.75, x + 0.75),
        "- 3": (X - 3, dX - 3, x - 3),
        "2 - x": (2 - X, 2 - dX, 2 - x),
        "* 3 (integer, no level)": (X * 3, dX * 3, 3 * x),
        "* -0.3": (X * -0.3, dX * -0.3, -0.3 * x),
        "+ plaintext": (X + P, dX + P, x + w),
        "- plaintext": (X - P, dX - P, x - w),
        "plaintext -": (P - X, P - dX, w - x),
        "+ array": (X + w, dX + w, x + w),
        "array -": (w - X, w - dX, w - x),
        "* array": (X * w, dX * w, x * w),
    }
    for name, (h, d, ref) in cases.items():
        assert_same(h, d, device, name)
        assert bits(toy_ctx.decrypt(d), ref) >= 18, name
    assert (dX * 3).level == X.level and (dX * -0.3).level == X.level - 1


@pytest.mark.parametrize("device", DEVICES)
def test_device_ops_refuse_bad_operands(toy_ctx, other_ctx, data, device):
    x, _, X, _ = data
    dX = resident(X, device)
    with pytest.raises(ht.MissingKeyError, match="no rotation key"):
        dX.rotate(5)
    with pytest.raises(ValueError, match="not a finite"):
        dX + float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        dX * np.full(x.shape, np.inf)
    low = dX.level_to(0)
    with pytest.raises(ValueError, match="level 0"):
        low * low
    with pytest.raises(ValueError, match="level 0"):
        low * 0.5
    eng = toy_ctx._engine
    with pytest.raises(ValueError, match="another context"):
        eng.rotate(_core.device_upload(other_ctx.encrypt(x)._ct, device), 1)
    size3 = eng.multiply_no_relin(dX._ct, dX._ct)
    with pytest.raises(ValueError, match="relinearize"):
        eng.rotate(size3, 1)


def test_device_limbs_export_zero_copy_through_dlpack(toy_ctx, data):
    torch = pytest.importorskip("torch")
    _, _, X, _ = data
    dX = resident(X, "cpu")
    ref = X.limbs().copy()
    view = dX.limbs()  # numpy over the backend's memory, read-only
    assert not view.flags.writeable and view.shape == ref.shape and np.array_equal(view, ref)
    ptr = view.__array_interface__["data"][0]
    t = torch.from_dlpack(dX._ct)
    assert t.dtype == torch.uint64 and tuple(t.shape) == ref.shape and t.data_ptr() == ptr
    a = np.from_dlpack(dX._ct)
    assert a.__array_interface__["data"][0] == ptr and np.array_equal(a, ref)
    assert dX._ct.__dlpack_device__() == (1, 0)
    assert np.array_equal(t.numpy(), ref)
    # The capsule keeps the ciphertext alive: its memory is not handed out again.
    del dX, view, a
    gc.collect()
    fresh = [resident(toy_ctx.encrypt(np.full(X.shape, 0.25)), "cpu") for _ in range(4)]
    assert t.data_ptr() == ptr and np.array_equal(t.numpy(), ref)
    del fresh


def test_dlpack_export_refusals_and_unconsumed_capsules(toy_ctx, data):
    _, _, X, _ = data
    d = _core.device_upload(X._ct, "cpu")
    with pytest.raises(BufferError, match="zero-copy"):
        d.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="live on cpu"):
        d.__dlpack__(dl_device=(2, 0))
    for _ in range(3):  # a capsule nobody imports frees its export
        d.__dlpack__()
    gc.collect()
    assert np.array_equal(np.from_dlpack(d), X.limbs())


def test_the_cpu_backend_reads_keys_in_place(toy_ctx):
    """The CPU backend reads keys where they are: no copy is made for it."""
    X = resident(toy_ctx.encrypt(np.ones(8)), "cpu")
    X.rotate(1)
    X * X
    assert toy_ctx._engine.device_key_bytes() == 0


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.is_available(), reason="no usable CUDA device")
def test_cuda_keys_are_uploaded_once_per_chain(rng):
    ctx = ht.Context.from_preset("toy-insecure", rotations=(1,), seed=5)
    x = rng.uniform(-1, 1, ctx.slots)
    X = resident(ctx.encrypt(x), "cuda:0")
    X.rotate(1)
    once = ctx._engine.device_key_bytes()
    assert once > 0
    Y = X.rotate(1) * X
    assert ctx._engine.device_key_bytes() > once  # the relinearization key joins; the Galois key is not re-uploaded
    twice = ctx._engine.device_key_bytes()
    Y.rotate(1)
    assert ctx._engine.device_key_bytes() == twice
    assert bits(ctx.decrypt(Y), np.roll(x, -1) * x) >= 18
    t = pytest.importorskip("torch")
    limbs = X.limbs()
    assert isinstance(limbs, t.Tensor) and limbs.device.type == "cuda"


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_n16_resident_key_switching_matches_the_host(device):
    """At the secure size (N = 2^16, 24 levels, dnum 2): multiply, square,
    hoisted rotations and conjugation on device-resident ciphertexts equal the
    host's word for word and hold 19 bits."""
    ctx = ht.Context.from_preset("n16", rotations=[1, -3], seed=2026, conjugation=True)
    rng = np.random.default_rng(26)
    x, y = rng.uniform(-1, 1, ctx.slots), rng.uniform(-1, 1, ctx.slots)
    X, Y = ctx.encrypt(x), ctx.encrypt(y)
    dX, dY = resident(X, device), resident(Y, device)
    cases = [("multiply", X * Y, dX * dY, x * y), ("square", X * X, dX * dX, x * x),
             ("conjugate", X.conjugate(), dX.conjugate(), x)]
    for s, h, d in zip([1, -3], X.rotate_many([1, -3]), dX.rotate_many([1, -3])):
        cases.append((f"rotate {s}", h, d, np.roll(x, -s)))
    for name, h, d, ref in cases:
        assert_same(h, d, device, name)
        assert bits(ctx.decrypt(d), ref) >= 19, name
