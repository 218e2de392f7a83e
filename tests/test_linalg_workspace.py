"""The workspace bound of a block linear map (linalg/cache.py, cpp/linalg/blockmap.cpp).

A map whose baby-step rotations do not fit the context's workspace budget makes
them in chunks and sums a few outputs at a time: the same ciphertexts bit for
bit, more decompositions. Products are checked against float64 and against the
unbounded evaluation of the same encryptions.
"""

import numpy as np
import pytest

import hetensor as ht
import hetensor.linalg as la
from hetensor import _core
from hetensor.linalg.cache import entry_plan, workspace
from conftest import bits

CCMM_BITS = 18   # two levels, ciphertext x ciphertext (as tests/test_linalg.py)
MAP_BITS = 20    # one plaintext product


@pytest.fixture
def ctx():
    c = ht.Context.from_preset("toy-insecure", seed=919)
    c.auto_keys = True
    la.set_plaintext_budget(c, 64 << 20)
    yield c
    la.clear_cache(c)


def test_ccmm_within_workspace_is_bit_identical(ctx):
    """A JKLS product (right operand over two ciphertexts, hundreds of baby rotations in its
    map) evaluated unbounded, with the smallest workspace (one baby at a time, one output per
    group) and with a middle one: identical decryptions, >= 18 bits against float64, and the
    bounded runs really chunk (more decompositions, the same plaintext products)."""
    g = np.random.default_rng(5)
    x, y = g.uniform(-1, 1, (16, 48)), g.uniform(-1, 1, (48, 48)) / 4
    X, Y = ctx.encrypt(x, layout="matrix"), ctx.encrypt(y, layout="matrix")
    la.set_workspace_budget(ctx, 0)
    z0, c0 = X.matmul(Y, return_cost=True)
    d0 = ctx.decrypt(z0)
    assert c0.method == "jkls" and bits(d0, x @ y) >= CCMM_BITS
    for ws in (1, 2_000_000):
        la.set_workspace_budget(ctx, ws)
        z, c = X.matmul(Y, return_cost=True)
        d = ctx.decrypt(z)
        assert np.array_equal(d, d0), ws
        assert bits(d, x @ y) >= CCMM_BITS
        assert c.plain_mults == c0.plain_mults and c.relinearizations == c0.relinearizations
        assert c.decompositions > c0.decompositions and c.rotations >= c0.rotations


def _map_case(ctx, g, cached: bool):
    """A random entry map of 3 inputs to 4 outputs (every output reads two inputs), its input
    and the float64 output."""
    slots, in_cts, out_cts = ctx.slots, 3, 4
    oc, os_, ic, is_, coef = [], [], [], [], []
    for o in range(out_cts):
        for i in (o % in_cts, (o + 1) % in_cts):
            for step in g.choice(slots, 24, replace=False):
                s = np.arange(slots)
                oc.append(np.full(slots, o)); os_.append(s); ic.append(np.full(slots, i))
                is_.append((s + step) % slots); coef.append(g.uniform(-1, 1, slots) / 48)
    plan = entry_plan(slots, in_cts, out_cts, *(np.concatenate(v) for v in (oc, os_, ic, is_, coef)))
    xin = g.uniform(-1, 1, (in_cts, slots))
    ref = np.zeros((out_cts, slots))
    for o_, s_, i_, t_, c_ in zip(*(np.concatenate(v) for v in (oc, os_, ic, is_, coef))):
        ref[o_, s_] += c_ * xin[i_, t_]
    ctx.generate_rotation_keys(plan.rotation_steps())
    level = ctx.max_level
    return plan.encoded(ctx._engine, level, cached), xin, ref


@pytest.mark.parametrize("cached", [True, False])
def test_map_work_bytes_same_ciphertexts(ctx, cached):
    """_core.linalg_apply_map with work_bytes from none to one ciphertext: the same output
    ciphertexts (serialized bytes), >= 20 bits against float64, the same products, and
    decompositions that grow as the chunks shrink; cached and streamed diagonals alike."""
    g = np.random.default_rng(11 + cached)
    mp, xin, ref = _map_case(ctx, g, cached)
    assert mp.cached == cached and min(len(b) for b in mp.babies) > 4
    ct = ctx.encrypt(xin.reshape(-1))._ct
    outs = {}
    ctb = 2 * (mp.level + 1) * ctx.ring_degree * 8  # one ciphertext at the map's level
    for wb in (0, 1, 6 * ctb):
        mp.work_bytes = wb
        out, cost = _core.linalg_apply_map(ctx._engine, ct, mp, 1)
        outs[wb] = (out, cost)
    out0, cost0 = outs[0]
    t0 = ht.CipherTensor._wrap(ctx, out0, (mp.out_cts * ctx.slots,), False, False)
    assert bits(ctx.decrypt(t0).reshape(mp.out_cts, ctx.slots), ref) >= MAP_BITS
    for wb, (out, cost) in outs.items():
        t = ht.CipherTensor._wrap(ctx, out, (mp.out_cts * ctx.slots,), False, False)
        assert t.to_bytes() == t0.to_bytes(), wb
        assert cost["plain_mults"] == cost0["plain_mults"] and cost["rescales"] == cost0["rescales"]
        assert cost["encodes"] == (0 if cached else cost0["encodes"])
        if wb:
            assert cost["decompositions"] > cost0["decompositions"]


def test_workspace_budget_checks(ctx, monkeypatch):
    """Negative budgets are refused with the reason; the environment variable sets the default
    and a malformed one is a clear error."""
    with pytest.raises(ValueError, match="workspace budget"):
        la.set_workspace_budget(ctx, -1)
    c = ht.Context.from_preset("toy-insecure", seed=920)
    monkeypatch.setenv("HETENSOR_WORKSPACE_BUDGET", "12345")
    assert workspace(c) == 12345
    c2 = ht.Context.from_preset("toy-insecure", seed=921)
    monkeypatch.setenv("HETENSOR_WORKSPACE_BUDGET", "lots")
    with pytest.raises(ValueError, match="HETENSOR_WORKSPACE_BUDGET must be a number of bytes"):
        workspace(c2)
    la.set_workspace_budget(c2, 7)
    assert workspace(c2) == 7
