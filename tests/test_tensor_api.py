"""The numpy/PyTorch-style surface of CipherTensor (issue 16): every item against a float64 reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import hetensor as ht
from conftest import bits


def with_keys(ctx, fn, tries: int = 4):
    """fn() after generating the rotation keys that a MissingKeyError names (so a test
    also checks that the error lists exactly what is needed)."""
    for _ in range(tries):
        try:
            return fn()
        except ht.MissingKeyError as e:
            assert e.steps, "a MissingKeyError must list the steps"
            ctx.generate_rotation_keys(e.steps)
    return fn()


@pytest.fixture(scope="module")
def ctx():
    """A toy context the tests of this module add keys to."""
    return ht.Context.from_preset("toy-insecure", seed=1616)


@pytest.fixture(scope="module")
def x():
    return np.linspace(-1.0, 1.0, 24).reshape(4, 6)


# -- hetensor.approx ---------------------------------------------------------------------

def test_approx_is_reachable_after_import_hetensor_and_has_a_default_degree():
    code = "import hetensor as ht; p = ht.approx.exp(-1, 1); print(p.degree, p.max_error)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    degree, err = out.stdout.split()
    assert 1 <= int(degree) <= ht.approx.DEFAULT_MAX_DEGREE
    assert float(err) <= ht.approx.DEFAULT_TARGET_ERROR


def test_default_approximation_evaluates_exp_to_20_bits(ctx):
    p = ht.approx.exp(-1, 1)
    x = np.linspace(-1, 1, 50)
    assert bits(ctx.decrypt(ctx.encrypt(x).polyval(p)), np.exp(x)) >= 19


def test_default_degree_is_best_effort_when_the_target_is_out_of_reach():
    p = ht.approx.relu(-1, 1)  # a kink: 2^-20 is out of reach at degree 63
    assert p.degree <= ht.approx.DEFAULT_MAX_DEGREE and p.depth <= 6
    assert p.max_error < 0.01
    with pytest.raises(ValueError, match="not both"):
        ht.approx.exp(-1, 1, 7, target_error=1e-3)


def test_dir_hetensor_does_not_leak_helpers():
    names = dir(ht)
    assert "annotations" not in names and "os" not in names
    assert {"approx", "cat", "stack"} <= set(ht.__all__)
    assert all(hasattr(ht, n) for n in ht.__all__)
    # every other public name is one of hetensor's own submodules (imported, so an attribute)
    for n in names:
        if not n.startswith("_") and n not in ht.__all__:
            mod = getattr(ht, n)
            assert isinstance(mod, type(ht)) and mod.__name__ == f"hetensor.{n}", f"hetensor.{n} leaks"


# -- arithmetic ----------------------------------------------------------------------------

def test_division_by_scalars_and_plaintext_arrays(ctx, x):
    X = ctx.encrypt(x)
    d = np.arange(1, 7, dtype=np.float64)
    assert bits(ctx.decrypt(X / 2), x / 2) >= 25
    assert bits(ctx.decrypt(X / -3.5), x / -3.5) >= 25
    assert bits(ctx.decrypt(X / d), x / d) >= 25
    assert (X / 2).level == X.level - 1
    with pytest.raises(ZeroDivisionError):
        X / 0
    with pytest.raises(ZeroDivisionError):
        X / np.zeros(6)
    with pytest.raises(TypeError, match="reciprocal"):
        X / X
    with pytest.raises(TypeError, match="reciprocal"):
        1 / X


def test_multiply_by_large_scalars_when_the_result_fits(ctx):
    x = np.linspace(-1, 1, ctx.slots)
    X = ctx.encrypt(x)
    for c in (2 ** 31, 2 ** 45, -(2 ** 70)):
        Y = X * c
        assert Y.level == X.level  # integers cost no level
        assert bits(ctx.decrypt(Y) / c, x) >= 25
    c = 2 ** 31 + 0.5
    assert bits(ctx.decrypt(X * c) / c, x) >= 25
    with pytest.raises(ValueError, match="exceeds what level"):
        X * 2.0 ** 200


@pytest.mark.parametrize("n", [100, 2048])  # partly filled (padding must stay zero) and full
def test_add_large_scalars(ctx, n):
    x = np.linspace(-1, 1, n)
    X = ctx.encrypt(x)
    for c in (1e7, 2 ** 70):
        assert bits(ctx.decrypt(X + c) / c, (x + c) / c) >= 30
        assert bits(ctx.decrypt(c - X) / c, (c - x) / c) >= 30
    low = X.level_to(0)
    with pytest.raises(ValueError, match="must stay below 2\\^") as err:
        low + 2 ** 70
    assert "dtype" not in str(err.value)
    with pytest.raises(ValueError, match="not a finite"):
        X + 10 ** 400


def test_encode_by_default_serves_sums_and_products_at_any_level(ctx, x):
    X = ctx.encrypt(x)
    pt = ctx.encode(x)
    assert pt.purpose == "auto"
    assert bits(ctx.decrypt(X + pt), 2 * x) >= 25
    assert bits(ctx.decrypt(X - pt), 0 * x) >= 25
    assert bits(ctx.decrypt(X * pt), x * x) >= 25
    low = X * X  # one level down: the plaintext is encoded again for it, once
    assert bits(ctx.decrypt(low + pt), x * x + x) >= 25
    assert bits(ctx.decrypt(low * pt), x ** 3) >= 25
    with pytest.raises(ValueError, match="purpose"):
        ctx.encode(x, purpose="sum")
    explicit = ctx.encode(x, purpose="multiply")
    with pytest.raises(ValueError, match="purpose='add'"):
        X + explicit


# -- metadata --------------------------------------------------------------------------

def test_len_ndim_size_numel_dtype_device(ctx, x):
    X = ctx.encrypt(x)
    assert len(X) == 4 and X.ndim == 2 and X.dim() == 2
    assert X.size == 24 and X.size() == (4, 6) and X.size(1) == 6 and X.numel() == 24
    assert X.dtype == np.float64 and X.device == "cpu"
    assert ctx.encrypt(x + 1j).dtype == np.complex128
    with pytest.raises(TypeError, match="0-d"):
        len(ctx.encrypt(1.5))
    with pytest.raises(TypeError, match="decrypt"):
        np.asarray(X)
    with pytest.raises(TypeError, match="iterating"):
        list(X)


def test_clone_is_an_equal_independent_copy(ctx, x):
    X = ctx.encrypt(x)
    Y = X.clone()
    assert Y._ct is not X._ct and Y.level == X.level and Y.shape == X.shape
    assert bits(ctx.decrypt(Y), x) >= 25


# -- rotation steps ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [1.7, 1.0, "1", True, None])
def test_rotation_steps_must_be_integers(toy_ctx, bad):
    X = toy_ctx.encrypt(np.ones(8))
    with pytest.raises(TypeError, match="integers"):
        X.rotate(bad)
    with pytest.raises(TypeError, match="integers"):
        X.rotate_many([1, bad])
    with pytest.raises(TypeError, match="integers"):
        toy_ctx.generate_rotation_keys([bad])


def test_rotation_steps_accept_numpy_integers(toy_ctx):
    x = np.arange(8.0)
    out = toy_ctx.decrypt(toy_ctx.encrypt(x).rotate(np.int64(1)))
    assert bits(out[:7], x[1:]) >= 25


# -- indexing, reshape, roll -----------------------------------------------------------------

KEYS = [0, -1, (2, 3), np.s_[:, :4], np.s_[1:3, ::2], np.s_[::-1], np.s_[..., 1], np.s_[[2, 0]], np.s_[None, 1],
        np.s_[:, [5, 0, 1]]]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_indexing_matches_numpy(ctx, x, key):
    X = ctx.encrypt(x)
    Y = with_keys(ctx, lambda: X[key])
    ref = x[key]
    assert Y.shape == np.shape(ref)
    assert bits(ctx.decrypt(Y), ref) >= 25
    assert Y.level >= X.level - 1  # at most one level


def test_indexing_plans_its_keys(x):
    c = ht.Context.from_preset("toy-insecure", seed=1717)
    steps = c.rotation_steps_for("getitem", x.shape, np.s_[:, :4])
    assert steps  # rows move: this selection needs rotations
    X = c.encrypt(x)
    with pytest.raises(ht.MissingKeyError) as err:
        X[:, :4]
    assert sorted(err.value.steps) == sorted(steps)
    c.generate_rotation_keys(steps)
    assert bits(c.decrypt(X[:, :4]), x[:, :4]) >= 25
    assert c.rotation_steps_for("getitem", x.shape, 0) == []  # row 0 stays in place: a mask only


def test_slot_moves_follow_auto_keys_and_the_key_policy(x):
    auto = ht.Context.from_preset("toy-insecure", seed=1818, auto_keys=True)
    assert bits(auto.decrypt(auto.encrypt(x)[:, :4]), x[:, :4]) >= 25
    assert bits(auto.decrypt(auto.encrypt(x).roll(3)), np.roll(x, 3)) >= 25
    p2 = ht.Context.from_preset("toy-insecure", seed=1819, key_policy="power-of-two")
    steps = p2.rotation_steps_for("getitem", x.shape, np.s_[:, :4])
    assert steps and all(s & (s - 1) == 0 or (p2.slots - s) & (p2.slots - s - 1) == 0 for s in steps)
    p2.generate_rotation_keys(steps)
    assert bits(p2.decrypt(p2.encrypt(x)[:, :4]), x[:, :4]) >= 25


def test_selecting_whole_ciphertexts_is_free(ctx):
    x = np.linspace(-1, 1, 3 * ctx.slots).reshape(3, ctx.slots)
    X = ctx.encrypt(x)
    for key in (1, np.s_[1:], np.s_[[2, 0]], np.s_[:]):
        Y = X[key]
        assert Y.level == X.level, key
        assert bits(ctx.decrypt(Y), x[key]) >= 25
    part = X[1, :5]  # part of a ciphertext: masked, one level
    assert part.level == X.level - 1
    assert bits(ctx.decrypt(part), x[1, :5]) >= 25


def test_bad_indices_are_refused(ctx, x):
    X = ctx.encrypt(x)
    with pytest.raises(IndexError):
        X[4]
    with pytest.raises(IndexError, match="boolean"):
        X[x > 0]
    with pytest.raises(IndexError):
        X[1.5]
    with pytest.raises(ValueError, match="empty"):
        X[2:2]
    with pytest.raises(IndexError):
        ctx.encrypt(2.0)[0]


def test_reshape_view_and_flatten_are_free(ctx, x):
    X = ctx.encrypt(x)
    for Y, ref in ((X.reshape(6, 4), x.reshape(6, 4)), (X.reshape((2, -1)), x.reshape(2, -1)),
                   (X.view(-1), x.reshape(-1)), (X.flatten(), x.reshape(-1)),
                   (X.reshape(2, 2, 6).flatten(1), x.reshape(2, 12))):
        assert Y.shape == ref.shape and Y.level == X.level
        assert bits(ctx.decrypt(Y), ref) >= 25
    with pytest.raises(ValueError, match="cannot reshape"):
        X.reshape(5, 5)
    with pytest.raises(ValueError, match="one dimension"):
        X.reshape(-1, -1)


@pytest.mark.parametrize("shifts,dims", [(1, None), (-5, None), (30, None), (1, 1), (-1, 0), ((1, 2), (0, 1))])
def test_roll_has_numpy_semantics(ctx, x, shifts, dims):
    X = ctx.encrypt(x)
    Y = with_keys(ctx, lambda: X.roll(shifts, dims))
    assert bits(ctx.decrypt(Y), np.roll(x, shifts, axis=dims)) >= 25
    assert Y.level == X.level - 1


def test_roll_of_a_full_ciphertext_is_one_rotation(ctx):
    x = np.linspace(-1, 1, ctx.slots)
    X = ctx.encrypt(x)
    Y = with_keys(ctx, lambda: X.roll(3))
    assert Y.level == X.level
    assert bits(ctx.decrypt(Y), np.roll(x, 3)) >= 25


def test_rotate_shifts_all_slots_unlike_roll(ctx):
    x = np.arange(1.0, 9.0)
    X = ctx.encrypt(x)
    rotated = ctx.decrypt(with_keys(ctx, lambda: X.rotate(1)))
    assert bits(rotated, np.append(x[1:], 0.0)) >= 25  # the last element comes from an empty slot


# -- sums and means ---------------------------------------------------------------------------

@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, False), (1, True), ((0, 1), False), (-1, True)])
def test_sum_and_mean_over_dims(ctx, x, dim, keepdim):
    X = ctx.encrypt(x)
    s = with_keys(ctx, lambda: X.sum(dim, keepdim))
    m = with_keys(ctx, lambda: X.mean(dim, keepdim))
    axis = tuple(dim) if isinstance(dim, tuple) else dim
    assert bits(ctx.decrypt(s), x.sum(axis=axis, keepdims=keepdim)) >= 22
    assert bits(ctx.decrypt(m), x.mean(axis=axis, keepdims=keepdim)) >= 22


@pytest.mark.parametrize("layout", [None, "matrix"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 1)])
def test_rotation_steps_for_sum_are_exactly_the_keys_of_that_sum(x, layout, dim):
    # A context without auto keys: planned keys must suffice, and the plan must depend on dim.
    c = ht.Context.from_preset("toy-insecure", seed=16)
    X = c.encrypt(x, layout=layout)
    steps = c.rotation_steps_for("sum", X, dim=dim)
    spec = ["flat" if layout is None else "matrix"]
    assert steps == c.rotation_steps_for("sum", x.shape, dim=dim, layouts=spec)
    if dim is not None:
        assert steps == c.rotation_steps_for("sum", X, dim)  # positional, as X.sum(dim)
        with pytest.raises(ht.MissingKeyError):
            X.sum(dim)
    c.generate_rotation_keys(steps)
    axis = tuple(dim) if isinstance(dim, tuple) else dim
    assert bits(c.decrypt(X.sum(dim)), x.sum(axis=axis)) >= 22
    assert bits(c.decrypt(X.mean(dim)), x.mean(axis=axis)) >= 22


def test_rotation_steps_for_sum_depends_on_dim_and_refuses_two_dims(ctx, x):
    X = ctx.encrypt(x)
    rows, cols = ctx.rotation_steps_for("sum", X, 0), ctx.rotation_steps_for("sum", X, 1)
    assert rows != cols and set(rows) | set(cols) <= set(ctx.rotation_steps_for("sum", X))
    with pytest.raises(ValueError, match="dim given twice"):
        ctx.rotation_steps_for("sum", X, 0, dim=0)
    with pytest.raises(TypeError, match="expected a shape"):
        ctx.rotation_steps_for("sum", "4x6")
    assert ctx.rotation_steps_for("roll", X, 1) == ctx.rotation_steps_for("roll", x.shape, 1)


def test_sum_and_mean_take_numpy_keywords(ctx, x):
    X = ctx.encrypt(x)
    assert bits(ctx.decrypt(with_keys(ctx, lambda: X.sum(axis=0))), x.sum(axis=0)) >= 22
    assert bits(ctx.decrypt(with_keys(ctx, lambda: X.sum(axis=1, keepdims=True))), x.sum(1, keepdims=True)) >= 22
    assert bits(ctx.decrypt(with_keys(ctx, lambda: np.sum(X, axis=1))), x.sum(axis=1)) >= 22
    assert bits(ctx.decrypt(with_keys(ctx, lambda: np.mean(X))), x.mean()) >= 22
    with pytest.raises(TypeError, match="dim or axis"):
        X.sum(0, axis=1)
    with pytest.raises(TypeError, match="dtype"):
        X.sum(dtype=np.float32)
    with pytest.raises(TypeError, match="out="):
        np.sum(X, out=np.zeros(6))


# -- cat and stack ----------------------------------------------------------------------------

def test_cat_and_stack_on_the_first_dimension(ctx, x):
    X, Y = ctx.encrypt(x), ctx.encrypt(-2 * x[:2])
    c = with_keys(ctx, lambda: ht.cat([X, Y]))
    assert bits(ctx.decrypt(c), np.concatenate([x, -2 * x[:2]])) >= 25
    s = with_keys(ctx, lambda: ht.stack([X, 3 * X]))
    assert bits(ctx.decrypt(s), np.stack([x, 3 * x])) >= 25
    low = with_keys(ctx, lambda: ht.cat([X * X, Y]))  # brought to the lower level first
    assert bits(ctx.decrypt(low), np.concatenate([x * x, -2 * x[:2]])) >= 25
    with pytest.raises(ValueError, match="first dimension"):
        ht.cat([X, X], dim=1)
    with pytest.raises(ValueError, match="differ"):
        ht.cat([X, ctx.encrypt(np.ones((2, 5)))])
    with pytest.raises(TypeError, match="encrypt"):
        ht.cat([X, x])
    with pytest.raises(ValueError, match="different contexts"):
        ht.cat([X, ht.Context.from_preset("toy-insecure", seed=2).encrypt(x)])


def test_cat_of_whole_ciphertexts_is_free(ctx):
    a = np.linspace(-1, 1, 2 * ctx.slots).reshape(2, ctx.slots)
    b = np.linspace(0, 1, ctx.slots // 2).reshape(1, -1).repeat(2, axis=0).reshape(1, -1)[:, : ctx.slots]
    A, B = ctx.encrypt(a), ctx.encrypt(b)
    C = ht.cat([A, B])
    assert C.level == A.level and C.num_ciphertexts == 3
    assert bits(ctx.decrypt(C), np.concatenate([a, b])) >= 25
    assert ctx.rotation_steps_for("cat", a.shape, b.shape) == []


# -- matrix layouts ---------------------------------------------------------------------------

def test_shape_ops_on_matrix_layouts(ctx, x):
    M = ctx.encrypt(x, layout="matrix")
    assert M.layout is not None
    for got, ref in ((lambda: M[1], x[1]), (lambda: M[:, :4], x[:, :4]), (lambda: M.reshape(-1), x.reshape(-1)),
                     (lambda: M.roll(2), np.roll(x, 2)), (lambda: ht.cat([M, M]), np.concatenate([x, x])),
                     (lambda: M.mean(1), x.mean(1)), (lambda: M.T.reshape(-1), x.T.reshape(-1)),
                     (lambda: M.T[1], x.T[1])):
        Y = with_keys(ctx, got)
        assert bits(ctx.decrypt(Y), ref) >= 22


# -- numpy and torch protocols -------------------------------------------------------------------

def test_numpy_ufuncs_that_map_to_ckks_ops(ctx, x):
    X = ctx.encrypt(x)
    w = np.linspace(0.5, 1.5, 6)
    cases = [(np.add(X, 1), x + 1), (np.subtract(1, X), 1 - x), (np.multiply(w, X), w * x), (np.negative(X), -x),
             (w + X, w + x), (w - X, w - x), (np.float64(2.0) * X, 2 * x), (np.true_divide(X, 4), x / 4),
             (np.square(X), x * x), (np.power(X, 3), x ** 3)]
    for got, ref in cases:
        assert isinstance(got, ht.CipherTensor)
        assert bits(ctx.decrypt(got), ref) >= 24
    W = np.linspace(-1, 1, 18).reshape(6, 3)
    mm = with_keys(ctx, lambda: np.matmul(X, W))
    assert bits(ctx.decrypt(mm), x @ W) >= 20
    assert bits(ctx.decrypt(with_keys(ctx, lambda: np.add.reduce(X))), x.sum(axis=0)) >= 22


def test_numpy_ufuncs_without_a_ckks_counterpart_say_so(ctx, x):
    X = ctx.encrypt(x)
    with pytest.raises(TypeError, match="approx.exp"):
        np.exp(X)
    with pytest.raises(TypeError, match="Comparisons"):
        np.greater(X, 0)
    with pytest.raises(TypeError, match="out="):
        np.add(X, 1, out=np.zeros_like(x))


def test_torch_functions_that_map_to_ckks_ops(ctx, x):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x)
    X = ctx.encrypt(t)
    W = torch.linspace(-1, 1, 18, dtype=torch.float64).reshape(6, 3)
    cases = [(lambda: torch.add(X, 1), t + 1), (lambda: t + X, 2 * t), (lambda: torch.sub(t, X, alpha=2), -t),
             (lambda: torch.mul(X, t), t * t), (lambda: torch.neg(X), -t), (lambda: torch.div(X, 4), t / 4),
             (lambda: torch.sum(X, 1), t.sum(1)), (lambda: torch.mean(X, dim=0, keepdim=True), t.mean(0, True)),
             (lambda: torch.cat([X, X]), torch.cat([t, t])), (lambda: torch.stack([X, X]), torch.stack([t, t])),
             (lambda: torch.roll(X, 1), torch.roll(t, 1)), (lambda: torch.reshape(X, (6, 4)), t.reshape(6, 4)),
             (lambda: torch.flatten(X), t.flatten()), (lambda: torch.matmul(X, W), t @ W),
             (lambda: X @ W, t @ W), (lambda: torch.square(X), t * t)]
    for fn, ref in cases:
        got = with_keys(ctx, fn)
        assert isinstance(got, ht.CipherTensor)
        out = ctx.decrypt(got)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
        assert bits(out.numpy(), ref.numpy()) >= 20
    with pytest.raises(TypeError, match="approx.sigmoid"):
        torch.sigmoid(X)
    with pytest.raises(TypeError, match="not supported"):
        torch.sort(X)


def test_decrypt_keeps_the_torch_dtype(ctx, x):
    torch = pytest.importorskip("torch")
    t32 = torch.tensor(x, dtype=torch.float32)
    X = ctx.encrypt(t32)
    assert X.dtype == torch.float32 and X.result_device == torch.device("cpu") and X.device == torch.device("cpu")
    for Y in (X, X * 2 + 1, X[1:], X.reshape(-1), with_keys(ctx, lambda: X.sum(0))):
        out = ctx.decrypt(Y)
        assert out.dtype == torch.float32
    assert ctx.decrypt(X * 1j).dtype == torch.complex64
    assert ctx.decrypt(X, dtype=torch.float64).dtype == torch.float64
    assert ctx.decrypt(X, dtype=np.float64).dtype == torch.float64
    assert bits(ctx.decrypt(X, dtype=torch.float64).numpy(), t32.double().numpy()) >= 25
    assert ctx.decrypt(ctx.encrypt(torch.arange(4))).dtype == torch.float64  # integers: not rounded back
    assert ctx.decrypt(ctx.encrypt(x), dtype=np.float32).dtype == np.float32
