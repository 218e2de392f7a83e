"""LoRA products (hetensor.linalg routes "diag", "repeat", "rowsum" and the fused ``lora``)
against float64 with bits asserted, on a toy ring (N = 2^12, 2048 slots).

Forward: X (m x d) @ A (d x r) @ B (r x p); backward: G @ B^T, X^T @ (G B^T)
(the gradient of A) and (X A)^T @ G (the gradient of B), all operands
encrypted; plaintext adapters go through the encrypted x plaintext products.
"""

from __future__ import annotations

import math

import pytest

from hetensor import linalg as la

from conftest import bits, linalg_context

LORA_BITS = 17   # two or three levels of ct x ct products at N = 2^12 (~24 bits observed)


@pytest.fixture(scope="module")
def ctx():
    yield from linalg_context(808, auto_keys=True)


def enc(ctx, a, layout="matrix"):
    return ctx.encrypt(a, layout=layout)


def operands(rng, m, d, r, p):
    X = rng.uniform(-1, 1, (m, d))
    A = rng.uniform(-1, 1, (d, r)) / math.sqrt(d)
    B = rng.uniform(-1, 1, (r, p)) / math.sqrt(r)
    return X, A, B


def log2K(ctx, bm):
    return int(math.log2(ctx.slots // bm))


@pytest.mark.parametrize("m,d,r,p", [(16, 40, 4, 24), (32, 96, 2, 96), (8, 200, 8, 30), (5, 64, 1, 64)])
def test_lora_forward_encrypted(ctx, m, d, r, p, rng):
    X, A, B = operands(rng, m, d, r, p)
    x, a, b = enc(ctx, X), enc(ctx, A), enc(ctx, B)
    z, cost = la.lora(x, a, b, return_cost=True)
    assert z.shape == (m, p)
    assert bits(ctx.decrypt(z), X @ A @ B) >= LORA_BITS
    assert cost.method == "diag+repeat"
    assert cost.levels == 3  # A's diagonals take a level of A, then one level per product
    assert z.layout.clean


def test_lora_prepared_costs_two_levels_and_few_rotations(ctx, rng):
    m, d, r, p = 16, 96, 4, 80
    X, A, B = operands(rng, m, d, r, p)
    x = enc(ctx, X).level_to(ctx.max_level - 1)  # the adapters sit one level above the activation
    lay_a = la.suggest_layout(ctx, x.layout, A.shape, method="diag")
    a = enc(ctx, A, lay_a)
    pa = la.prepare(a, x, method="diag")
    u_lay = pa.cand["setup"]["out"].replace(shape=(m, r))
    b = enc(ctx, B, la.suggest_layout(ctx, u_lay, B.shape, method="repeat"))
    pa, pb = la.prepare_lora(a, b, x)
    z, cost = la.lora(x, pa, pb, return_cost=True)
    assert bits(ctx.decrypt(z), X @ A @ B) >= LORA_BITS
    assert cost.levels == 2
    rr = 4  # next power of two >= r
    ncb = x.layout.ncb
    # diag: r' - 1 hoisted rotations per column block of x, log2(K / r') fold; repeat: r' - 1
    bound = ncb * (rr - 1) + log2K(ctx, x.layout.bm) - int(math.log2(rr)) + (rr - 1)
    assert cost.rotations <= bound, (cost, bound)
    assert cost.relinearizations <= 1 + math.ceil(p / (ctx.slots // x.layout.bm))


def test_repeat_route_thin_inner_dimension(ctx, rng):
    """(m x r) @ (r x p) with r small: the repeat route on a fresh U (its periodic copy is one map)."""
    U = rng.uniform(-1, 1, (24, 6))
    B = rng.uniform(-1, 1, (6, 70))
    u, b = enc(ctx, U), enc(ctx, B)
    z, cost = la.matmul(u, b, method="repeat", return_cost=True)
    assert bits(ctx.decrypt(z), U @ B) >= LORA_BITS
    assert cost.levels == 2 and cost.ct_mults > 0
    assert z.layout.clean


@pytest.mark.parametrize("m,d,r", [(16, 40, 4), (32, 96, 8), (12, 300, 3)])
def test_gradient_of_a_xt_g(ctx, m, d, r, rng):
    """dA = X^T @ (G B^T): rows of both in lanes, the rowsum route, picked by the planner."""
    X = rng.uniform(-1, 1, (m, d))
    Gb = rng.uniform(-1, 1, (m, r))
    x, g = enc(ctx, X), enc(ctx, Gb)
    z, cost = la.matmul(x.T, g, return_cost=True)
    assert z.shape == (d, r)
    assert bits(ctx.decrypt(z), X.T @ Gb) >= LORA_BITS
    # by predicted key switches: rowsum, or a transpose then broadcast diagonals when r is larger
    assert cost.method in ("rowsum", "diag+transpose")
    z, cost = la.matmul(x.T, g, method="rowsum", return_cost=True)
    assert bits(ctx.decrypt(z), X.T @ Gb) >= LORA_BITS
    assert cost.levels == 3  # the thin G is spread (1), multiplied (1), placed (1)
    z, cost = la.matmul(x.level_to(x.level - 1).T, g, method="rowsum", return_cost=True)
    assert bits(ctx.decrypt(z), X.T @ Gb) >= LORA_BITS
    assert cost.levels == 2  # on X, when G is one level higher


@pytest.mark.parametrize("m,r,p", [(16, 4, 40), (32, 2, 96)])
def test_gradient_of_b_ut_g(ctx, m, r, p, rng):
    """dB = (X A)^T @ G with U = X A thin: rowsum with the thin operand on the left."""
    U = rng.uniform(-1, 1, (m, r))
    G = rng.uniform(-1, 1, (m, p))
    u, g = enc(ctx, U), enc(ctx, G)
    z, cost = la.matmul(u.T, g, method="rowsum", return_cost=True)
    assert z.shape == (r, p)
    assert bits(ctx.decrypt(z), U.T @ G) >= LORA_BITS
    z2 = la.matmul(u.T, g)  # whatever the planner picks, the same product
    assert bits(ctx.decrypt(z2), U.T @ G) >= LORA_BITS


def test_lora_forward_and_both_gradients_encrypted(ctx, rng):
    """One LoRA step's products on encrypted operands: Y = X A B, G B^T, X^T (G B^T), (X A)^T G."""
    m, d, r, p = 16, 48, 4, 48
    X, A, B = operands(rng, m, d, r, p)
    G = rng.uniform(-1, 1, (m, p))
    x, a, b, g = enc(ctx, X), enc(ctx, A), enc(ctx, B), enc(ctx, G)
    y = la.lora(x, a, b)
    assert bits(ctx.decrypt(y), X @ A @ B) >= LORA_BITS
    gb = g @ b.T                                   # (m x p) @ (p x r): thin right operand
    assert bits(ctx.decrypt(gb), G @ B.T) >= LORA_BITS
    da = x.T @ gb                                  # (d x m) @ (m x r)
    assert bits(ctx.decrypt(da), X.T @ G @ B.T) >= LORA_BITS - 1
    u = x @ a
    db = u.T @ g                                   # (r x m) @ (m x p)
    assert bits(ctx.decrypt(db), (X @ A).T @ G) >= LORA_BITS - 1


def test_lora_with_plaintext_adapters(ctx, rng):
    m, d, r, p = 16, 40, 4, 24
    X, A, B = operands(rng, m, d, r, p)
    x = enc(ctx, X)
    z = (x @ A) @ B
    assert bits(ctx.decrypt(z), X @ A @ B) >= LORA_BITS
    b = enc(ctx, B)
    z = (x @ A) @ b                                # plaintext A, encrypted B
    assert bits(ctx.decrypt(z), X @ A @ B) >= LORA_BITS


def test_lora_rejects_what_does_not_fit(ctx, rng):
    x = enc(ctx, rng.uniform(-1, 1, (8, 10)))
    with pytest.raises(ValueError, match="align"):
        la.lora(x, enc(ctx, rng.uniform(-1, 1, (9, 2))), enc(ctx, rng.uniform(-1, 1, (2, 5))))
    low = x.level_to(1)
    with pytest.raises(ValueError, match="level"):
        la.lora(low, enc(ctx, rng.uniform(-1, 1, (10, 2))), enc(ctx, rng.uniform(-1, 1, (2, 5))))
