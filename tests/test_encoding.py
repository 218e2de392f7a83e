"""Encode/encrypt/decrypt round trips: shapes, batches of ciphertexts, complex
data, torch tensors, lists and scalars, public-key and symmetric encryption."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

# Fresh-ciphertext error at scale 2^40, N = 2^12 (max over the slots): about
# 2^-28 with the public key (rounding noise after the division by a special
# prime; tests/test_encrypt_public.py holds it there) and about 2^-31 with the
# secret key (sigma per coefficient).
FRESH_BITS = 22  # public key, or either mode
SYMMETRIC_BITS = 28


def fresh_bits(symmetric: bool) -> int:
    return SYMMETRIC_BITS if symmetric else FRESH_BITS

MODES = [pytest.param(False, id="public-key"), pytest.param(True, id="symmetric")]


@pytest.mark.parametrize("symmetric", MODES)
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4)])
def test_round_trip_shapes(toy_ctx, rng, shape, symmetric):
    x = rng.uniform(-1, 1, size=shape)
    ct = toy_ctx.encrypt(x, symmetric=symmetric)
    assert isinstance(ct, ht.CipherTensor)
    assert ct.shape == shape
    assert ct.size == math.prod(shape)
    assert ct.num_ciphertexts == 1
    assert ct.level == toy_ctx.max_level
    assert ct.scale == toy_ctx.scale
    assert not ct.is_complex
    got = toy_ctx.decrypt(ct)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float64
    assert got.shape == shape
    assert bits(got, x) >= fresh_bits(symmetric)
    # the shortcut on the tensor
    assert bits(ct.decrypt(), x) >= fresh_bits(symmetric)


@pytest.mark.parametrize("symmetric", MODES)
def test_round_trip_full_slots(toy_ctx, rng, symmetric):
    x = rng.uniform(-1, 1, size=toy_ctx.slots)
    ct = toy_ctx.encrypt(x, symmetric=symmetric)
    assert ct.num_ciphertexts == 1
    assert bits(toy_ctx.decrypt(ct), x) >= fresh_bits(symmetric)


@pytest.mark.parametrize(
    "size_in_slots, count",
    [(lambda s: s + 1, 2), (lambda s: 2 * s, 2), (lambda s: 2 * s + 5, 3), (lambda s: 5 * s - 1, 5)],
)
def test_batches_of_ciphertexts(toy_ctx, rng, size_in_slots, count):
    size = size_in_slots(toy_ctx.slots)
    x = rng.uniform(-1, 1, size=size)
    ct = toy_ctx.encrypt(x)
    assert ct.num_ciphertexts == count
    assert ct.shape == (size,)
    got = toy_ctx.decrypt(ct)
    assert got.shape == (size,)
    assert bits(got, x) >= FRESH_BITS


def test_multidimensional_batch(toy_ctx, rng):
    x = rng.uniform(-1, 1, size=(3, toy_ctx.slots // 2 + 1, 2))  # 3 * (slots + 2) values
    ct = toy_ctx.encrypt(x)
    assert ct.num_ciphertexts == math.ceil(x.size / toy_ctx.slots)
    assert bits(toy_ctx.decrypt(ct), x) >= FRESH_BITS


def test_nbytes_grow_with_batch_and_shrink_with_level(toy_ctx, rng):
    one = toy_ctx.encrypt(rng.uniform(-1, 1, 10))
    three = toy_ctx.encrypt(rng.uniform(-1, 1, 2 * toy_ctx.slots + 1))
    n, limbs = toy_ctx.ring_degree, toy_ctx.max_level + 1
    assert one.nbytes == 2 * limbs * n * 8  # two polynomials of level+1 64-bit limbs
    assert three.nbytes == 3 * one.nbytes
    low = one.level_to(2)
    assert low.nbytes == 2 * 3 * n * 8


@pytest.mark.parametrize("symmetric", MODES)
def test_complex_round_trip(toy_ctx, rng, symmetric):
    z = rng.uniform(-1, 1, size=(4, 9)) + 1j * rng.uniform(-1, 1, size=(4, 9))
    ct = toy_ctx.encrypt(z, symmetric=symmetric)
    assert ct.is_complex
    got = toy_ctx.decrypt(ct)
    assert got.dtype == np.complex128
    assert got.shape == z.shape
    assert bits(got, z) >= fresh_bits(symmetric)


def test_real_input_decrypts_without_imaginary_part(toy_ctx, rng):
    x = rng.uniform(-1, 1, 33)
    got = toy_ctx.decrypt(toy_ctx.encrypt(x))
    assert not np.iscomplexobj(got)


def test_list_and_scalar_inputs(toy_ctx):
    got = toy_ctx.decrypt(toy_ctx.encrypt([0.5, -0.25, 1.0]))
    assert got.shape == (3,) and bits(got, np.array([0.5, -0.25, 1.0])) >= FRESH_BITS
    nested = [[1.0, 2.0, 3.0], [-4.0, 5.5, 0.0]]
    got = toy_ctx.decrypt(toy_ctx.encrypt(nested))
    assert got.shape == (2, 3) and bits(got, np.array(nested)) >= FRESH_BITS
    got = toy_ctx.decrypt(toy_ctx.encrypt(0.75))
    assert isinstance(got, np.ndarray) and got.shape == () and bits(got, np.float64(0.75)) >= FRESH_BITS
    got = toy_ctx.decrypt(toy_ctx.encrypt(3))  # a Python int
    assert got.shape == () and got.dtype == np.float64 and bits(got, np.float64(3.0)) >= FRESH_BITS
    got = toy_ctx.decrypt(toy_ctx.encrypt([1 + 2j, -0.5j]))
    assert got.dtype == np.complex128 and bits(got, np.array([1 + 2j, -0.5j])) >= FRESH_BITS


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_numeric_dtypes(toy_ctx, dtype):
    x = np.array([0, 1, 1, 0, 1, 1, 0], dtype=dtype)
    if dtype not in (np.bool_,):
        x = np.array([0, 1, 2, 3, 100, 7, 12], dtype=dtype)
    got = toy_ctx.decrypt(toy_ctx.encrypt(x))
    assert got.dtype == np.float64
    assert bits(got, x.astype(np.float64)) >= FRESH_BITS


def test_complex64_input(toy_ctx):
    z = np.array([0.5 + 0.25j, -1j], dtype=np.complex64)
    got = toy_ctx.decrypt(toy_ctx.encrypt(z))
    assert got.dtype == np.complex128
    assert bits(got, z.astype(np.complex128)) >= FRESH_BITS


def test_non_contiguous_input(toy_ctx, rng):
    base = rng.uniform(-1, 1, size=(8, 6))
    x = base[::2, ::-1].T  # strided, reversed, transposed view
    assert not x.flags.c_contiguous
    got = toy_ctx.decrypt(toy_ctx.encrypt(x))
    assert bits(got, x) >= FRESH_BITS


def test_empty_array(toy_ctx):
    ct = toy_ctx.encrypt(np.zeros((0,)))
    got = toy_ctx.decrypt(ct)
    assert got.shape == (0,)


def test_input_is_not_modified(toy_ctx, rng):
    x = rng.uniform(-1, 1, 20)
    keep = x.copy()
    ct = toy_ctx.encrypt(x)
    _ = ct * x + x
    np.testing.assert_array_equal(x, keep)


def test_values_near_the_limit_round_trip(toy_ctx, rng):
    m = toy_ctx.max_value
    x = np.array([0.99 * m, -0.99 * m, 0.5 * m, 1.0, -1e-6])
    got = toy_ctx.decrypt(toy_ctx.encrypt(x, symmetric=True))
    # the absolute error does not grow with the magnitude
    assert bits(got, x) >= SYMMETRIC_BITS


@pytest.mark.parametrize("symmetric", MODES)
def test_precision_of_small_and_wide_inputs(toy_ctx, rng, symmetric):
    for lo, hi in ((-1e-6, 1e-6), (-1.0, 1.0), (-1000.0, 1000.0)):
        x = rng.uniform(lo, hi, 200)
        got = toy_ctx.decrypt(toy_ctx.encrypt(x, symmetric=symmetric))
        # the error is absolute, independent of |x|: relative precision depends on |x|
        assert bits(got, x) >= fresh_bits(symmetric)


# -- torch -----------------------------------------------------------------------------


def test_torch_input_returns_torch(toy_ctx):
    torch = pytest.importorskip("torch")
    for dtype in (torch.float32, torch.float64):
        t = torch.linspace(-1, 1, 12, dtype=dtype).reshape(3, 4)
        ct = toy_ctx.encrypt(t)
        assert ct.shape == (3, 4)
        out = toy_ctx.decrypt(ct)
        assert isinstance(out, torch.Tensor)
        assert out.dtype == dtype  # the input's dtype comes back (issue 16)
        assert tuple(out.shape) == (3, 4)
        assert bits(out.numpy(), t.double().numpy()) >= FRESH_BITS
    # results of arithmetic on a torch-born tensor are torch too
    t = torch.tensor([0.5, -0.5, 0.25], dtype=torch.float64)
    ct = toy_ctx.encrypt(t)
    out = toy_ctx.decrypt(ct * ct + 1.0)
    assert isinstance(out, torch.Tensor)
    assert bits(out.numpy(), (t * t + 1).numpy()) >= 20


def test_torch_complex_and_grad(toy_ctx):
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.0, -2.0], requires_grad=True)  # detached, not refused
    assert bits(toy_ctx.decrypt(toy_ctx.encrypt(t)).numpy(), np.array([1.0, -2.0])) >= FRESH_BITS
    z = torch.tensor([1 + 1j, -0.5j], dtype=torch.complex64)
    out = toy_ctx.decrypt(toy_ctx.encrypt(z))
    assert isinstance(out, torch.Tensor) and out.is_complex()
    assert bits(out.numpy(), z.to(torch.complex128).numpy()) >= FRESH_BITS


def test_torch_plaintext_operand(toy_ctx, rng):
    torch = pytest.importorskip("torch")
    x = rng.uniform(-1, 1, 6)
    y = torch.tensor(rng.uniform(-1, 1, 6))
    ct = toy_ctx.encrypt(x)
    assert bits(toy_ctx.decrypt(ct + y), x + y.numpy()) >= FRESH_BITS
    assert bits(toy_ctx.decrypt(ct * y), x * y.numpy()) >= 20
