"""Packed matrix products (hetensor.linalg) against float64 numpy references.

Every product is checked with a precision bound in bits and with its cost
record: the reported level cost must equal the levels actually consumed.
Contexts are small insecure rings (N = 2^12, 2048 slots); keys are made from
``ctx.rotation_steps_for`` the way a user would.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetensor as ht
from hetensor import linalg as la
from hetensor.layout import FlatLayout, Layout

from conftest import bits, linalg_context

CPMM_BITS = 20   # one plaintext product: ~27 bits observed at N = 2^12
CCMM_BITS = 18   # two levels, ciphertext x ciphertext: ~25 bits observed


@pytest.fixture
def ctx():
    """toy-insecure (N = 2^12, 6 levels), one per test so that its keys and cached
    diagonals (up to 128 MiB; the default budget is sized for models) go with it."""
    yield from linalg_context(515, 128 << 20)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def keys_for(ctx, op, *shapes, **kw):
    steps = ctx.rotation_steps_for(op, *shapes, **kw)
    ctx.generate_rotation_keys(steps)
    return steps


def enc(ctx, x, layout="matrix"):
    return ctx.encrypt(x, layout=layout)


def check_cost(cost, before_level, out):
    assert cost.levels == before_level - out.level, (cost, before_level, out.level)
    assert cost.key_switches == cost.rotations + cost.relinearizations


# -- layouts -------------------------------------------------------------------

@pytest.mark.parametrize("shape,kw", [
    ((5, 7), {}), ((8, 8), {}), ((3, 300), {}), ((300, 3), {}), ((20, 100), {}), ((2, 6, 9), {}),
    ((40, 70), dict(bm=16)), ((40, 70), dict(bm=64, br=40, bc=4)), ((9,), {}),
])
def test_layout_pack_unpack_roundtrip(shape, kw, rng):
    x = rng.normal(size=shape)
    lay = Layout.for_matrix(shape, 256, **kw)
    rows = lay.pack(x)
    assert rows.shape == (lay.num_ciphertexts, 256)
    np.testing.assert_array_equal(lay.unpack(rows).real, x)
    # every element in its own slot, padding zero
    assert np.count_nonzero(lay.mask()) == x.size
    # the transposed view holds the same slots
    if len(shape) >= 2:
        np.testing.assert_array_equal(lay.T.unpack(rows).real, np.swapaxes(x, -1, -2))


def test_layout_validation():
    with pytest.raises(ValueError):
        Layout((4, 4), 256, bm=3)
    with pytest.raises(ValueError):
        Layout((4, 4), 256, bm=8, br=9)
    with pytest.raises(ValueError):
        Layout((4, 4), 256, bm=8, bc=64)
    with pytest.raises(ValueError):
        Layout((4, 4), 255)


def test_flat_layout_is_a_transposed_matrix_layout():
    flat = FlatLayout((10, 16), 64)
    lay = flat.as_layout()
    assert lay is not None and lay.transposed
    for a, b in zip(flat.positions(), lay.positions()):
        np.testing.assert_array_equal(a, b)
    assert FlatLayout((10, 12), 64).as_layout() is None


@pytest.mark.parametrize("shape", [(5, 7), (64, 40), (3, 2, 5), (11,)])
def test_encrypt_decrypt_matrix_layouts(ctx, shape, rng):
    x = rng.uniform(-1, 1, shape)
    t = enc(ctx, x)
    assert isinstance(t.layout, Layout) and t.layout.clean
    assert bits(ctx.decrypt(t), x) >= 25
    if len(shape) >= 2:
        tt = enc(ctx, x, "matrix.T")
        assert tt.layout.transposed
        assert bits(ctx.decrypt(tt), x) >= 25
        assert bits(ctx.decrypt(t.T), np.swapaxes(x, -1, -2)) >= 25


def test_encrypt_with_explicit_multi_ciphertext_layout(ctx, rng):
    x = rng.uniform(-1, 1, (50, 90))
    lay = Layout((50, 90), ctx.slots, bm=64, br=50, bc=16)
    t = ctx.encrypt(x, layout=lay)
    assert t.num_ciphertexts == 6
    assert bits(ctx.decrypt(t), x) >= 25


# -- CPMM: encrypted x plaintext ---------------------------------------------------

CPMM_SHAPES = [(8, 8, 8), (5, 7, 3), (16, 40, 24), (20, 100, 70), (3, 300, 5), (40, 33, 130)]


@pytest.mark.parametrize("m,n,p", CPMM_SHAPES)
def test_cpmm_matches_float64_in_one_level(ctx, m, n, p, rng):
    X = rng.uniform(-1, 1, (m, n))
    W = rng.uniform(-1, 1, (n, p)) / math.sqrt(n)
    keys_for(ctx, "cpmm", (m, n), (n, p))
    x = enc(ctx, X)
    z, cost = x.matmul(W, return_cost=True)
    assert z.shape == (m, p)
    assert bits(ctx.decrypt(z), X @ W) >= CPMM_BITS
    check_cost(cost, x.level, z)
    assert cost.levels == 1 and cost.op == "cpmm"
    assert cost.plain_mults > 0 and cost.ct_mults == 0 and cost.relinearizations == 0
    assert z.layout.clean


@pytest.mark.parametrize("m,n,p", [(8, 8, 8), (20, 100, 70), (7, 30, 45)])
def test_cpmm_transposed_input(ctx, m, n, p, rng):
    X = rng.uniform(-1, 1, (m, n))
    W = rng.uniform(-1, 1, (n, p)) / math.sqrt(n)
    xt = enc(ctx, X.T.copy()).T          # X stored transposed: X.T is free
    keys_for(ctx, "cpmm", (m, n), (n, p), layouts=[xt.layout, None])
    z = xt @ W
    assert z.layout.transposed
    assert bits(ctx.decrypt(z), X @ W) >= CPMM_BITS
    assert la.last_cost().levels == 1


@pytest.mark.parametrize("q,m,n", [(6, 8, 5), (30, 20, 9), (70, 40, 3)])
def test_plaintext_on_the_left(ctx, q, m, n, rng):
    W = rng.uniform(-1, 1, (q, m)) / math.sqrt(m)
    X = rng.uniform(-1, 1, (m, n))
    for layout in ("matrix", "matrix.T"):
        x = enc(ctx, X, layout)
        keys_for(ctx, "pcmm", (q, m), (m, n), layouts=[None, x.layout])
        z = W @ x
        assert z.shape == (q, n)
        assert bits(ctx.decrypt(z), W @ X) >= CPMM_BITS
        assert la.last_cost().levels == 1


def test_cpmm_batched_vector_and_torch(ctx, rng):
    torch = pytest.importorskip("torch")
    X = rng.uniform(-1, 1, (3, 6, 10))
    W = torch.tensor(rng.uniform(-1, 1, (10, 4)))
    keys_for(ctx, "cpmm", (3, 6, 10), (10, 4))
    z = enc(ctx, X) @ W
    assert z.shape == (3, 6, 4)
    assert bits(ctx.decrypt(z), X @ W.numpy()) >= CPMM_BITS
    v = rng.uniform(-1, 1, 10)
    keys_for(ctx, "cpmm", (10,), (10, 4))
    zv = enc(ctx, v) @ W.numpy()
    assert zv.shape == (4,)
    assert bits(ctx.decrypt(zv), v @ W.numpy()) >= CPMM_BITS


def test_plain_matrix_is_encoded_once(ctx, rng):
    W = rng.uniform(-1, 1, (24, 16)) / 5
    pm = ht.PlainMatrix(ctx, W)
    keys_for(ctx, "cpmm", (12, 24), (24, 16))
    outs = []
    for k in range(3):
        X = rng.uniform(-1, 1, (12, 24))
        z, cost = enc(ctx, X).matmul(pm, return_cost=True)
        outs.append(bits(ctx.decrypt(z), X @ W))
        assert cost.encodes == 0
    assert len(pm._maps) == 1 and pm.nbytes > 0
    assert min(outs) >= CPMM_BITS
    # a numpy weight goes through the content-hash cache: the same PlainMatrix object
    a = la._as_plain(ctx, W.copy())
    assert a is la._as_plain(ctx, W.copy())


def test_plain_matrix_encoded_per_level_of_use(rng, caplog):
    """Diagonals are encoded at the level of the first product, kept per level; a weight
    that cannot fit the budget is refused with cache=True and streamed (one log line) otherwise."""
    c = ht.Context.from_preset("toy-insecure", seed=78)
    la.set_plaintext_budget(c, 32 << 20)
    X = rng.uniform(-1, 1, (8, 20))
    W = rng.uniform(-1, 1, (20, 6))
    keys_for(c, "cpmm", (8, 20), (20, 6))
    pm = ht.PlainMatrix(c, W, name="W")
    assert pm.levels == [] and pm.nbytes == 0          # nothing encoded before a product
    x = enc(c, X).level_to(4)
    z, cost = x.matmul(pm, return_cost=True)
    assert pm.levels == [4] and cost.encodes == 0 and pm.nbytes > 0
    assert bits(c.decrypt(z), X @ W) >= CPMM_BITS
    z, cost = enc(c, X).matmul(pm, return_cost=True)   # another level: encoded there too, both kept
    assert pm.levels == [4, c.max_level] and bits(c.decrypt(z), X @ W) >= CPMM_BITS
    z, cost = x.matmul(pm, return_cost=True)
    assert cost.encodes == 0
    la.set_plaintext_budget(c, 1 << 16)                # smaller than one diagonal
    strict = ht.PlainMatrix(c, W, name="Wq", cache=True)
    with pytest.raises(ValueError, match="budget"):
        x @ strict
    with caplog.at_level("INFO", logger="hetensor"):
        z, cost = x.matmul(ht.PlainMatrix(c, W, name="Wk"), return_cost=True)
    assert cost.encodes > 0 and bits(c.decrypt(z), X @ W) >= CPMM_BITS
    assert any("Wk" in r.getMessage() and "streamed" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="cache"):
        ht.PlainMatrix(c, W, cache="sometimes")


def test_cpmm_streamed_diagonals(rng):
    """Maps larger than the plaintext budget are encoded at every use and still exact."""
    c = ht.Context.from_preset("toy-insecure", seed=77)
    la.set_plaintext_budget(c, 0)
    X = rng.uniform(-1, 1, (8, 20))
    W = rng.uniform(-1, 1, (20, 6))
    keys_for(c, "cpmm", (8, 20), (20, 6))
    z, cost = enc(c, X).matmul(W, return_cost=True)
    assert cost.encodes > 0
    assert bits(c.decrypt(z), X @ W) >= CPMM_BITS


def test_cpmm_multi_ciphertext_larger_ring(rng):
    """N = 2^13: a matrix over several ciphertexts in both dimensions."""
    c = ht.Context.from_preset("n13-insecure", seed=9)
    la.set_plaintext_budget(c, 64 << 20)
    X = rng.uniform(-1, 1, (100, 90))
    W = rng.uniform(-1, 1, (90, 75)) / 10
    lay = Layout((100, 90), c.slots, bm=128, br=100, bc=16)
    x = c.encrypt(X, layout=lay)
    keys_for(c, "cpmm", (100, 90), (90, 75), layouts=[lay, None])
    z = x @ W
    assert x.num_ciphertexts == 6 and z.num_ciphertexts == 3
    assert bits(c.decrypt(z), X @ W) >= CPMM_BITS


# -- CCMM: encrypted x encrypted -----------------------------------------------------

CCMM_SHAPES = [
    (8, 8, 8),      # square
    (16, 16, 16),   # square, two super-slot heights
    (5, 3, 7),      # non-power-of-two
    (12, 6, 10),    # rectangular
    (32, 8, 32),    # attention-like: tokens x head_dim @ head_dim x tokens
    (24, 40, 4),    # thin LoRA A: n x r with r = 4
    (24, 4, 40),    # thin LoRA B: r x n
    (40, 4, 40),    # output over two ciphertexts
]


@pytest.mark.parametrize("m,n,p", CCMM_SHAPES)
@pytest.mark.parametrize("method", ["jkls", "diag"])
def test_ccmm_matches_float64_in_two_levels(ctx, m, n, p, method, rng):
    X = rng.uniform(-1, 1, (m, n))
    Y = rng.uniform(-1, 1, (n, p))
    x, y = enc(ctx, X), enc(ctx, Y)
    if not la._ccmm_candidates(ctx, x.layout, y.layout, 1, method):
        pytest.skip(f"{method} does not apply to {m}x{n} @ {n}x{p}")
    keys_for(ctx, "ccmm", (m, n), (n, p), method=method)
    z, cost = x.matmul(y, method=method, return_cost=True)
    assert z.shape == (m, p)
    assert bits(ctx.decrypt(z), X @ Y) >= CCMM_BITS
    check_cost(cost, min(x.level, y.level), z)
    assert cost.levels == 2 and cost.method == method
    assert cost.ct_mults > 0 and cost.relinearizations > 0
    assert set(cost.rotation_steps) <= set(ctx.rotation_steps_for("ccmm", (m, n), (n, p), method=method))


def test_ccmm_automatic_choice_and_rotation_steps(ctx, rng):
    X = rng.uniform(-1, 1, (16, 12))
    Y = rng.uniform(-1, 1, (12, 16))
    steps = keys_for(ctx, "matmul", (16, 12), (12, 16))
    z = enc(ctx, X) @ enc(ctx, Y)
    cost = la.last_cost()
    assert cost.method in ("jkls", "diag")
    assert set(cost.rotation_steps) <= set(steps)
    assert bits(ctx.decrypt(z), X @ Y) >= CCMM_BITS


def test_attention_scores_q_kt(ctx, rng):
    """Q K^T with K encrypted as tokens x head_dim: K.T is free, the product reads it in place."""
    Q = rng.uniform(-1, 1, (24, 8))
    K = rng.uniform(-1, 1, (24, 8))
    q, k = enc(ctx, Q), enc(ctx, K)
    keys_for(ctx, "ccmm", (24, 8), (8, 24), layouts=[q.layout, k.T.layout])
    s = q @ k.T
    assert s.shape == (24, 24)
    assert bits(ctx.decrypt(s), Q @ K.T) >= CCMM_BITS
    cost = la.last_cost()
    check_cost(cost, q.level, s)
    # read in place (2 levels), or K^T moved to a non-transposed layout first when that is cheaper (3)
    assert cost.levels == (3 if cost.method.endswith("+transpose") else 2)


def test_lora_chain_with_cooperative_layout(ctx, rng):
    """x @ A @ B with A stored transposed at x's super-slot height: the diag method for x @ A."""
    m, n, r = 16, 96, 4
    X = rng.uniform(-1, 1, (m, n))
    A = rng.uniform(-1, 1, (n, r)) / 4
    Bm = rng.uniform(-1, 1, (r, n))
    x = enc(ctx, X)
    a = ctx.encrypt(A, layout=Layout((r, n), ctx.slots, bm=x.layout.bm).T)
    b = enc(ctx, Bm)
    keys_for(ctx, "ccmm", (m, n), (n, r), layouts=[x.layout, a.layout])
    h = x @ a
    assert la.last_cost().method == "diag"
    keys_for(ctx, "ccmm", (m, r), (r, n), layouts=[h.layout, b.layout])
    out = h @ b
    assert bits(ctx.decrypt(h), X @ A) >= CCMM_BITS
    assert bits(ctx.decrypt(out), X @ A @ Bm) >= CCMM_BITS - 2
    assert x.level - out.level == 4


@pytest.mark.parametrize("m,n,p,method", [(16, 96, 4, "diag"), (12, 6, 10, "jkls"), (16, 4, 40, "jkls")])
def test_prepared_right_operand(ctx, m, n, p, method, rng):
    """A right operand prepared once for a left layout: same product, fewer rotations per use."""
    Y = rng.uniform(-1, 1, (n, p)) / 4
    X1, X2 = rng.uniform(-1, 1, (m, n)), rng.uniform(-1, 1, (m, n))
    x1, x2 = enc(ctx, X1), enc(ctx, X2)
    y = ctx.encrypt(Y, layout=Layout((p, n), ctx.slots, bm=x1.layout.bm).T) if method == "diag" else enc(ctx, Y)
    keys_for(ctx, "ccmm", (m, n), (n, p), layouts=[x1.layout, y.layout], method=method)
    full = la.matmul(x1, y, method=method)
    full_cost = la.last_cost()
    prep = la.prepare(y, x1, method=method)
    assert prep.cost.levels == 1 and prep.cost.rotations > 0
    for X, x in ((X1, x1), (X2, x2)):
        z, cost = x.matmul(prep, return_cost=True)
        assert bits(ctx.decrypt(z), X @ Y) >= CCMM_BITS
        assert cost.rotations < full_cost.rotations
        check_cost(cost, min(x.level, prep.level), z)
    assert bits(ctx.decrypt(full), X1 @ Y) >= CCMM_BITS
    with pytest.raises(ValueError, match="prepared for another"):
        enc(ctx, X1, "matrix.T") @ prep


def test_ccmm_batched(ctx, rng):
    X = rng.uniform(-1, 1, (2, 6, 5))
    Y = rng.uniform(-1, 1, (2, 5, 7))
    Y1 = rng.uniform(-1, 1, (5, 7))
    x = enc(ctx, X)
    keys_for(ctx, "ccmm", (2, 6, 5), (2, 5, 7))
    z = x @ enc(ctx, Y)
    assert z.shape == (2, 6, 7)
    assert bits(ctx.decrypt(z), X @ Y) >= CCMM_BITS
    keys_for(ctx, "ccmm", (2, 6, 5), (5, 7))
    z1 = x @ enc(ctx, Y1)   # one right operand shared by the batch
    assert bits(ctx.decrypt(z1), X @ Y1) >= CCMM_BITS


def test_ccmm_from_flat_tensors(ctx, rng):
    """Tensors from plain ctx.encrypt are reinterpreted (power-of-two widths) or moved (one level)."""
    X = rng.uniform(-1, 1, (6, 8))
    Y = rng.uniform(-1, 1, (8, 5))
    x, y = ctx.encrypt(X), ctx.encrypt(Y)
    keys_for(ctx, "ccmm", (6, 8), (8, 5), layouts=[x.layout, y.layout])
    z, cost = x.matmul(y, return_cost=True)
    assert bits(ctx.decrypt(z), X @ Y) >= CCMM_BITS
    # y (width 5) is moved into a matrix layout first: one level more than the product's 2; a transpose
    # of x first runs beside it (no more level), one of y after it (one more)
    assert cost.levels == 3 + (cost.method.endswith("+transpose") and cost.method.startswith("jkls"))
    check_cost(cost, min(x.level, y.level), z)


def test_product_of_products_levels(ctx, rng):
    X = rng.uniform(-1, 1, (8, 8))
    W = rng.uniform(-1, 1, (8, 8)) / 3
    x = enc(ctx, X)
    keys_for(ctx, "cpmm", (8, 8), (8, 8))
    y = x @ W
    keys_for(ctx, "ccmm", (8, 8), (8, 8), layouts=[y.layout, x.layout])
    z = y @ x
    assert x.level - z.level == 3
    assert bits(ctx.decrypt(z), (X @ W) @ X) >= CCMM_BITS


# -- transpose, sums, broadcasting, element-wise ------------------------------------------

def test_transpose_is_free_and_materializes(ctx, rng):
    X = rng.uniform(-1, 1, (6, 11))
    x = enc(ctx, X)
    t = x.T
    assert t.shape == (11, 6) and t.level == x.level and la.last_cost().levels == 0
    np.testing.assert_allclose(ctx.decrypt(t), X.T, atol=1e-5)
    assert bits(ctx.decrypt(t.T), X) >= 25
    keys_for(ctx, "transpose", (6, 11))
    m = la.materialize_transpose(x)
    assert not m.layout.transposed and m.level == x.level - 1
    assert bits(ctx.decrypt(m), X.T) >= 22


@pytest.mark.parametrize("shape,layout", [((6, 11), "matrix"), ((6, 11), "matrix.T"), ((40, 70), None),
                                          ((3, 5, 9), "matrix")])
def test_sum_over_every_dim_costs_no_level(ctx, shape, layout, rng):
    X = rng.uniform(-1, 1, shape)
    lay = Layout(shape, ctx.slots, bm=64, br=40, bc=16) if layout is None else layout
    x = ctx.encrypt(X, layout=lay)
    keys_for(ctx, "sum", shape, layouts=[x.layout])
    nd = len(shape)
    for dim in list(range(nd)) + [None, (nd - 2, nd - 1)]:
        for keepdim in (False, True):
            s = x.sum(dim, keepdim=keepdim)
            ref = X.sum(axis=dim, keepdims=keepdim)
            assert s.shape == ref.shape, (dim, keepdim)
            assert bits(ctx.decrypt(s), ref) >= 18, (dim, keepdim)
            assert la.last_cost().levels == 0


def test_sum_of_a_product_masks_first(ctx, rng):
    X = rng.uniform(-1, 1, (6, 5))
    Y = rng.uniform(-1, 1, (5, 7))
    x, y = enc(ctx, X), enc(ctx, Y)
    keys_for(ctx, "ccmm", (6, 5), (5, 7), method="jkls")
    z = la.matmul(x, y, method="jkls")
    assert not z.layout.clean
    keys_for(ctx, "sum", (6, 7), layouts=[z.layout])
    s = z.sum(0)
    assert la.last_cost().levels == 1
    assert bits(ctx.decrypt(s), (X @ Y).sum(0)) >= CCMM_BITS
    # a plaintext product ignores the padding and leaves it zero
    W = rng.uniform(-1, 1, (7, 3))
    keys_for(ctx, "cpmm", (6, 7), (7, 3), layouts=[z.layout, None])
    w = z @ W
    assert w.layout.clean
    keys_for(ctx, "sum", (6, 3), layouts=[w.layout])
    assert bits(ctx.decrypt(w.sum(0)), (X @ Y @ W).sum(0)) >= CCMM_BITS - 2
    assert la.last_cost().levels == 0


def test_broadcast_row_and_column_vectors(ctx, rng):
    X = rng.uniform(-1, 1, (6, 10))
    row = rng.uniform(-1, 1, 10)
    col = rng.uniform(-1, 1, (6, 1))
    x = enc(ctx, X)
    for vec, ref in ((row, X + row), (row.reshape(1, 10), X + row), (col, X + col)):
        v = enc(ctx, vec)
        target = x.layout
        steps = set(ctx.rotation_steps_for("broadcast", vec.shape, X.shape, layouts=[v.layout, target]))
        ctx.generate_rotation_keys(sorted(steps))
        out = x + v
        assert out.shape == X.shape
        assert bits(ctx.decrypt(out), ref) >= 22
    # products with a broadcast column, and the reflected order
    v = enc(ctx, col)
    out = v * x
    assert bits(ctx.decrypt(out), col * X) >= 20
    # plaintext vectors broadcast by packing, no rotation
    assert bits(ctx.decrypt(x * row), X * row) >= 22
    assert bits(ctx.decrypt(x - col), X - col) >= 22


def test_elementwise_same_and_different_layouts(ctx, rng):
    X = rng.uniform(-1, 1, (6, 10))
    Y = rng.uniform(-1, 1, (6, 10))
    x, y = enc(ctx, X), enc(ctx, Y)
    assert bits(ctx.decrypt(x * y), X * Y) >= 22
    assert bits(ctx.decrypt(x + y - 0.5), X + Y - 0.5) >= 22
    yt = enc(ctx, Y, "matrix.T")  # same values, another packing: moved into x's layout
    keys_for(ctx, "relayout", (6, 10), layouts=[yt.layout, x.layout])
    s = x + yt
    assert s.layout == x.layout
    assert bits(ctx.decrypt(s), X + Y) >= 22
    f = ctx.encrypt(Y)  # flat packing
    keys_for(ctx, "relayout", (6, 10), layouts=[FlatLayout((6, 10), ctx.slots), x.layout])
    assert bits(ctx.decrypt(x * f), X * Y) >= 20


# -- errors -----------------------------------------------------------------------------------

def test_rotation_steps_for_are_sufficient(rng):
    """A fresh context with exactly the keys rotation_steps_for lists runs every op."""
    c = ht.Context.from_preset("toy-insecure", seed=11)
    X = rng.uniform(-1, 1, (6, 10))
    W = rng.uniform(-1, 1, (10, 7))
    Y = rng.uniform(-1, 1, (10, 5))
    x, y = enc(c, X), enc(c, Y)
    row, col = enc(c, rng.uniform(-1, 1, 10)), enc(c, rng.uniform(-1, 1, (6, 1)))
    flat = c.encrypt(Y)
    steps = set()
    steps.update(c.rotation_steps_for("cpmm", (6, 10), (10, 7)))
    steps.update(c.rotation_steps_for("pcmm", (7, 6), (6, 10)))
    for method in ("jkls", "diag"):
        steps.update(c.rotation_steps_for("ccmm", (6, 10), (10, 5), method=method))
    steps.update(c.rotation_steps_for("ccmm", (6, 10), (10, 5), layouts=[None, flat.layout]))
    steps.update(c.rotation_steps_for("sum", (6, 10)))
    steps.update(c.rotation_steps_for("broadcast", (10,), (6, 10), layouts=[row.layout, None]))
    steps.update(c.rotation_steps_for("broadcast", (6, 1), (6, 10), layouts=[col.layout, None]))
    c.generate_rotation_keys(sorted(steps))
    assert bits(c.decrypt(x @ W), X @ W) >= CPMM_BITS
    Wl = rng.uniform(-1, 1, (7, 6))
    assert bits(c.decrypt(Wl @ x), Wl @ X) >= CPMM_BITS
    for method in ("jkls", "diag"):
        assert bits(c.decrypt(la.matmul(x, y, method=method)), X @ Y) >= CCMM_BITS
    assert bits(c.decrypt(x @ flat), X @ Y) >= CCMM_BITS
    assert bits(c.decrypt(x.sum(0)), X.sum(0)) >= 20
    assert bits(c.decrypt(x.sum(1)), X.sum(1)) >= 20
    assert bits(c.decrypt(x + row), X + c.decrypt(row)) >= 20
    assert bits(c.decrypt(x * col), X * c.decrypt(col)) >= 20


@pytest.mark.parametrize("m,n,p,method", [(16, 16, 16, "jkls"), (12, 6, 10, "jkls"), (24, 40, 4, "diag")])
def test_few_keys_policy(m, n, p, method, rng):
    """Chained loop rotations: fewer keys, same result."""
    c = ht.Context.from_preset("toy-insecure", seed=21)
    X = rng.uniform(-1, 1, (m, n))
    Y = rng.uniform(-1, 1, (n, p))
    fast = set(c.rotation_steps_for("ccmm", (m, n), (n, p), method=method))
    la.set_key_policy(c, "few")
    few = set(c.rotation_steps_for("ccmm", (m, n), (n, p), method=method))
    assert len(few) < len(fast)
    c.generate_rotation_keys(sorted(few))
    z = la.matmul(enc(c, X), enc(c, Y), method=method)
    assert bits(c.decrypt(z), X @ Y) >= CCMM_BITS
    assert set(la.last_cost().rotation_steps) <= few


def test_missing_keys_list_the_steps(rng):
    c = ht.Context.from_preset("toy-insecure", seed=3)
    X = rng.uniform(-1, 1, (8, 8))
    W = rng.uniform(-1, 1, (8, 8))
    need = c.rotation_steps_for("cpmm", (8, 8), (8, 8))
    assert need
    x = enc(c, X)
    with pytest.raises(ht.MissingKeyError) as err:
        x @ W
    assert set(err.value.steps) <= set(need) and err.value.steps
    c.generate_rotation_keys(need[:1])
    with pytest.raises(ht.MissingKeyError) as err:
        x @ W
    assert need[0] not in err.value.steps
    c.generate_rotation_keys(need)
    assert bits(c.decrypt(x @ W), X @ W) >= CPMM_BITS
    y = enc(c, X)
    with pytest.raises(ht.MissingKeyError) as err:
        x @ y
    assert set(err.value.steps) <= set(c.rotation_steps_for("ccmm", (8, 8), (8, 8)))


def test_shape_mismatch_raises_value_error(ctx, rng):
    x = enc(ctx, rng.uniform(-1, 1, (4, 5)))
    with pytest.raises(ValueError, match="align"):
        x @ np.ones((4, 3))
    with pytest.raises(ValueError, match="align"):
        np.ones((3, 5)) @ x
    with pytest.raises(ValueError, match="align"):
        x @ enc(ctx, rng.uniform(-1, 1, (4, 3)))
    with pytest.raises(ValueError):
        x + enc(ctx, rng.uniform(-1, 1, (5, 4)))
    with pytest.raises(ValueError):
        x @ ht.PlainMatrix(ctx, np.ones(5))
    pt = ctx.encode(np.ones((4, 5)), level=x.level)
    with pytest.raises(ValueError, match="layout"):
        x * pt  # a row-major PlainTensor would be silently misaligned
    other = ht.Context.from_preset("toy-insecure", seed=4)
    with pytest.raises(ValueError, match="context"):
        x @ enc(other, np.ones((5, 2)))


def test_level_zero_operand_is_refused(ctx, rng):
    X = rng.uniform(-1, 1, (4, 4))
    x = enc(ctx, X)
    low = x.level_to(0)
    low = ht.CipherTensor._wrap(ctx, low._ct, x.shape, False, False, x.layout)
    keys_for(ctx, "cpmm", (4, 4), (4, 4))
    with pytest.raises(ValueError, match="level"):
        low @ np.eye(4)


@pytest.mark.parametrize("shape,layout,block,shift", [((12, 5), "matrix", 4, 1), ((12, 5), "matrix", 4, 3),
                                                      ((12, 5), "matrix.T", 3, 2), ((2, 6, 3), "matrix", 2, -1)])
def test_roll_rows_within_blocks(ctx, shape, layout, block, shift, rng):
    """Row b * block + t takes row b * block + (t + shift) mod block, in x's own layout, in one level."""
    X = rng.uniform(-1, 1, shape)
    x = enc(ctx, X, layout)
    ctx.auto_keys = True
    y = la.roll_rows(x, shift, block)
    lead = X.reshape(shape[:-2] + (shape[-2] // block, block, shape[-1]))
    ref = np.roll(lead, -shift, axis=-2).reshape(shape)
    assert y.layout.same_slots(x.layout) and y.level == x.level - 1
    assert bits(ctx.decrypt(y), ref) >= 20
    assert la.roll_rows(x, block, block) is x  # a whole turn: nothing moves


def test_roll_rows_refuses_blocks_that_do_not_divide_the_rows(ctx, rng):
    x = enc(ctx, rng.uniform(-1, 1, (6, 4)))
    with pytest.raises(ValueError, match="blocks of 4: the tensor has 6 rows"):
        la.roll_rows(x, 1, 4)
    with pytest.raises(ValueError, match="blocks of 0"):
        la.roll_rows(x, 1, 0)
