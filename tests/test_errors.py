"""Every error path of the Python API: a typed exception whose message says
what was wrong, never a crash and never silent garbage."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import hetensor as ht
from conftest import bits


@pytest.fixture
def pair(toy_ctx, other_ctx, rng):
    x = rng.uniform(-1, 1, 6)
    return x, toy_ctx.encrypt(x), other_ctx.encrypt(x)


# -- mixing contexts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: b + a,
        lambda a, b: a - b,
        lambda a, b: b - a,
        lambda a, b: a * b,
        lambda a, b: b * a,
    ],
    ids=["add", "radd", "sub", "rsub", "mul", "rmul"],
)
def test_mixed_contexts(pair, op):
    _, a, b = pair
    with pytest.raises(ValueError, match="context"):
        op(a, b)


def test_decrypt_with_the_other_context(pair, toy_ctx, other_ctx):
    x, a, b = pair
    with pytest.raises(ValueError, match="context"):
        other_ctx.decrypt(a)
    with pytest.raises(ValueError, match="context"):
        toy_ctx.decrypt(b)
    assert bits(toy_ctx.decrypt(a), x) >= 21


def test_mixed_contexts_at_the_engine_level(pair, other_ctx):
    """The C++ core checks too: a ciphertext of context A given to B's engine."""
    _, a, _ = pair
    eng = other_ctx._engine
    for call in (
        lambda: eng.decrypt(a._ct),
        lambda: eng.add(a._ct, a._ct),
        lambda: eng.negate(a._ct),
        lambda: eng.multiply(a._ct, a._ct),
        lambda: eng.relinearize(a._ct),
        lambda: eng.rescale(a._ct),
        lambda: eng.rotate(a._ct, 1),
        lambda: eng.rotate_hoisted(a._ct, [1]),
        lambda: eng.mul_scalar(a._ct, 2.0),
        lambda: eng.add_scalar(a._ct, 2.0),
        lambda: eng.level_to(a._ct, 1),
        lambda: eng.mul_values(a._ct, np.ones((1, other_ctx.slots), complex)),
        lambda: eng.add_values(a._ct, np.ones((1, other_ctx.slots), complex)),
    ):
        with pytest.raises(ValueError, match="context"):
            call()


def test_same_parameters_do_not_make_contexts_interchangeable(toy_ctx, rng):
    """Two contexts from the same preset and seed hold equal keys but are
    different objects: mixing them is still refused."""
    twin = ht.Context.from_preset("toy-insecure", seed=12)
    twin2 = ht.Context.from_preset("toy-insecure", seed=12)
    a, b = twin.encrypt([1.0]), twin2.encrypt([1.0])
    with pytest.raises(ValueError, match="context"):
        a + b


# -- shapes --------------------------------------------------------------------------------


def test_shape_mismatch_between_ciphertexts(toy_ctx, rng):
    a = toy_ctx.encrypt(rng.uniform(-1, 1, (3, 4)))
    for other_shape in ((4, 3), (12,), (3, 5), (2, 3, 4)):
        b = toy_ctx.encrypt(rng.uniform(-1, 1, other_shape))
        for op in (lambda: a + b, lambda: a - b, lambda: a * b, lambda: b * a):
            with pytest.raises(ValueError, match="shape"):
                op()


def test_shape_mismatch_with_plaintext(toy_ctx, rng):
    a = toy_ctx.encrypt(rng.uniform(-1, 1, (3, 4)))
    for bad in (np.ones(5), np.ones((4, 3)), np.ones((2, 3, 4)), [1.0, 2.0]):
        for op in (lambda: a + bad, lambda: a - bad, lambda: a * bad):
            with pytest.raises(ValueError, match="shape|broadcast"):
                op()
        with pytest.raises(ValueError, match="shape|broadcast"):
            bad - a if not isinstance(bad, np.ndarray) else a.__rsub__(bad)


def test_batched_shape_mismatch(toy_ctx, rng):
    a = toy_ctx.encrypt(rng.uniform(-1, 1, toy_ctx.slots + 1))  # 2 ciphertexts
    b = toy_ctx.encrypt(rng.uniform(-1, 1, toy_ctx.slots))  # 1 ciphertext
    with pytest.raises(ValueError):
        a + b
    with pytest.raises(ValueError):
        a * b


# -- NaN / Inf -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, complex(np.nan, 0), complex(0, np.inf)])
def test_nan_inf_in_encrypt(toy_ctx, bad):
    x = np.array([0.5, 0.25, 1.0], dtype=np.complex128 if isinstance(bad, complex) else np.float64)
    x[1] = bad
    with pytest.raises(ValueError, match="NaN|Inf"):
        toy_ctx.encrypt(x)
    with pytest.raises(ValueError, match="NaN|Inf"):
        toy_ctx.encrypt(x, symmetric=True)
    with pytest.raises(ValueError, match="NaN|Inf"):
        toy_ctx.encrypt(bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_in_plaintext_operands(toy_ctx, rng, bad):
    a = toy_ctx.encrypt(rng.uniform(-1, 1, 5))
    full = toy_ctx.encrypt(rng.uniform(-1, 1, toy_ctx.slots))  # the scalar fast path
    p = np.ones(5)
    p[2] = bad
    for op in (lambda: a + p, lambda: a - p, lambda: a * p, lambda: a.__rsub__(p)):
        with pytest.raises(ValueError, match="NaN|Inf|finite"):
            op()
    for ct in (a, full):
        for op in (lambda: ct + bad, lambda: bad + ct, lambda: ct - bad, lambda: bad - ct,
                   lambda: ct * bad, lambda: bad * ct):
            with pytest.raises(ValueError, match="NaN|Inf|finite"):
                op()


# -- magnitudes ----------------------------------------------------------------------------


def test_values_too_large_for_the_scale(toy_ctx):
    m = toy_ctx.max_value
    assert 0 < m < np.inf
    for bad in ([m], [0.0, -m], [2 * m, 1.0], [1e30], [m * 1j], [0.8 * m + 0.8j * m]):
        with pytest.raises(ValueError) as info:
            toy_ctx.encrypt(bad)
        msg = str(info.value)
        assert "large" in msg and "divide" in msg, msg
    big = toy_ctx.encrypt(np.full(toy_ctx.slots + 2, 0.5))
    big_vals = np.full(toy_ctx.slots + 2, 0.5)
    big_vals[-1] = 3 * m  # in the second ciphertext of the batch
    with pytest.raises(ValueError):
        toy_ctx.encrypt(big_vals)
    assert big.num_ciphertexts == 2


def test_plaintext_operand_too_large(toy_ctx, rng):
    """Scalars and plaintexts too large for the scale are refused, not wrapped."""
    a = toy_ctx.encrypt(rng.uniform(-1, 1, 5))
    full = toy_ctx.encrypt(rng.uniform(-1, 1, toy_ctx.slots))
    for ct in (a, full):
        with pytest.raises(ValueError):
            ct + 1e30
        with pytest.raises(ValueError):
            ct * 1e30
        with pytest.raises(ValueError):
            ct * 1.5e30
    with pytest.raises(ValueError):
        a + np.full(5, 1e30)
    with pytest.raises(ValueError):
        a * np.full(5, 1e30)


# -- dtypes and types -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        np.array(["a", "b"]),
        [object(), object()],
        None,
        {"a": 1.0},
        np.array([b"x"]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        [[1.0, 2.0], [3.0]],  # ragged
    ],
    ids=["str", "str-array", "objects", "None", "dict", "bytes", "datetime", "ragged"],
)
def test_non_numeric_input_is_a_type_error(toy_ctx, bad):
    with pytest.raises(TypeError):
        toy_ctx.encrypt(bad)


@pytest.mark.parametrize("bad", ["abc", None, object(), np.array(["x"] * 3)], ids=["str", "None", "object", "str-array"])
def test_non_numeric_operand_is_a_type_error(toy_ctx, bad):
    a = toy_ctx.encrypt([1.0, 2.0, 3.0])
    for op in (lambda: a + bad, lambda: a - bad, lambda: a * bad):
        with pytest.raises(TypeError):
            op()


def test_decrypt_non_tensor(toy_ctx):
    with pytest.raises(TypeError):
        toy_ctx.decrypt(np.ones(3))
    with pytest.raises(TypeError):
        toy_ctx.decrypt("ct")


def test_cipher_tensor_cannot_be_built_directly():
    with pytest.raises(TypeError):
        ht.CipherTensor()


def test_preset_name_must_be_a_string():
    with pytest.raises(TypeError):
        ht.Context.from_preset(14)


# -- pickling ------------------------------------------------------------------------------


def test_pickling_a_context_with_its_secret_is_refused(toy_ctx):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="secret"):
            pickle.dumps(toy_ctx, protocol=protocol)
    with pytest.raises(TypeError):
        copy.deepcopy(toy_ctx)
    # a ciphertext pickles through the binary format, under every protocol
    ct = toy_ctx.encrypt([1.0, 2.0])
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(ct, protocol=protocol))
        assert np.allclose(toy_ctx.decrypt(back), [1.0, 2.0], atol=1e-6)


# -- presets ------------------------------------------------------------------------------


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        ht.Context.from_preset("n99")
    msg = str(info.value)
    assert "n99" in msg
    for name in ht.presets():
        assert name in msg, f"the message should list '{name}': {msg}"
    assert not isinstance(info.value, ht.SecurityError)


# -- levels ---------------------------------------------------------------------------------


def test_exhausted_levels(toy_ctx, rng):
    x = rng.uniform(-1, 1, 10)
    a = toy_ctx.encrypt(x).level_to(0)
    b = toy_ctx.encrypt(x)
    for op in (lambda: a * b, lambda: b * a, lambda: a * a, lambda: a.square(), lambda: a * x,
               lambda: a * 0.5, lambda: a**2):
        with pytest.raises(ValueError) as info:
            op()
        assert "level" in str(info.value)
    with pytest.raises(ValueError):
        a.level_to(1)
    with pytest.raises(ValueError):
        toy_ctx._engine.rescale(a._ct)


def test_operation_errors_do_not_modify_operands(toy_ctx, rng):
    """No partial mutation on throw (checklist C11)."""
    x = rng.uniform(-1, 1, 10)
    a = toy_ctx.encrypt(x).level_to(0)
    before = toy_ctx.decrypt(a)
    level, scale = a.level, a.scale
    for op in (lambda: a * a, lambda: a * np.nan, lambda: a + np.ones(3), lambda: a.rotate(999)):
        with pytest.raises((ValueError, KeyError)):
            op()
    assert (a.level, a.scale) == (level, scale)
    np.testing.assert_array_equal(toy_ctx.decrypt(a), before)


def test_thread_count_must_be_positive():
    for bad in (0, -1):
        with pytest.raises(ValueError):
            ht.set_num_threads(bad)


# -- the engine's metadata override (bootstrapping's free rescalings) -----------------------


@pytest.mark.parametrize("scale, bound", [(0.0, 1.0), (-2.0, 1.0), (float("nan"), 1.0), (float("inf"), 1.0),
                                          (2.0 ** 40, -1.0), (2.0 ** 40, float("nan")), (2.0 ** 40, float("inf"))])
def test_with_scale_refuses_bad_metadata(toy_ctx, scale, bound):
    ct = toy_ctx.encrypt(np.ones(4))._ct
    with pytest.raises(ValueError, match="with_scale"):
        ct.with_scale(scale, bound)


def test_with_scale_rereads_the_same_polynomials(toy_ctx, rng):
    x = rng.uniform(-1, 1, 8)
    X = toy_ctx.encrypt(x)
    doubled = X._like(X._ct.with_scale(X._ct.scale / 2, 2.0))
    assert doubled._ct.bound == 2.0
    assert bits(toy_ctx.decrypt(doubled), 2 * x) > 20
