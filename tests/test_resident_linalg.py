"""The one BSGS engine (cpp/circuits/bsgs) and the matrix products on device-resident ciphertexts.

The bootstrapping transforms (``LinearTransform``) and the block maps of the
products (``BlockMap``) run one engine: the same diagonals at the same baby
step give the same ciphertext word for word whichever object carries them
(cached or streamed plaintexts, host or device memory). The products
(``LinalgProgram``: maps, rotate-sums, sums of rotated products, gathers,
plaintext products) run on ciphertexts in a backend's memory as backend
calls and must equal the host's products word for word, with the same cost
counts; every result also decrypts against float64. "cpu" puts the residues in
the CPU backend's memory; "cuda:0" runs the same cases where a GPU is present
and skips cleanly elsewhere. Toy ring (N = 2^12).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core
from hetensor import linalg as la
from hetensor.linalg import products

from conftest import DEVICES, bits, linalg_context, resident


@pytest.fixture(scope="module")
def ctx():
    yield from linalg_context(911, auto_keys=True)


def _host(dev) -> _core.Ciphertext:
    return _core.device_download(dev) if isinstance(dev, _core.DeviceCiphertext) else dev


def _same(host: _core.Ciphertext, got, device=None) -> None:
    if device is not None:
        assert isinstance(got, _core.DeviceCiphertext) and got.device == device
    back = _host(got)
    assert (back.level, back.scale, back.size, back.batch) == (host.level, host.scale, host.size, host.batch)
    assert np.array_equal(back.limbs(), host.limbs())


def _diagonals(rng, slots, steps):
    return {d: (rng.uniform(-1, 1, slots) + 1j * rng.uniform(-1, 1, slots)) / len(steps) for d in steps}


def _as_block_map(slots, diags, n1):
    """The diagonals as a one-input, one-output BlockMap: out[s] += diag_d[s] * in[(s + d) mod slots]."""
    os_, is_, coef = [], [], []
    s = np.arange(slots)
    for d, v in diags.items():
        os_.append(s)
        is_.append((s + d) % slots)
        coef.append(v)
    os_, is_, coef = np.concatenate(os_), np.concatenate(is_), np.concatenate(coef)
    zeros = np.zeros(len(os_), dtype=np.int64)
    return _core.linalg_entry_map(slots, 1, 1, zeros, os_, zeros, is_, coef, n1)


def _reference(diags, x):
    return sum(v * np.roll(x, -d, axis=-1) for d, v in diags.items())


@pytest.mark.parametrize("device", [None] + DEVICES)
def test_a_transform_and_a_block_map_are_one_engine(ctx, device):
    """LinearTransform (diagonals over Q) and BlockMap with the same diagonals and
    baby step: word for word the same ciphertext, cached or streamed, on the host
    or resident; 44 diagonals in one giant group exceed the 32-term inner product."""
    rng = np.random.default_rng(7)
    n, eng, level = ctx.slots, ctx._engine, 3
    diags = _diagonals(rng, n, list(range(44)) + [64, 65, 300, n - 1, n - 40])
    n1 = 64
    lt = _core.encode_linear_transform(eng, diags, level, n1, 0.0, False)
    bm = _as_block_map(n, diags, n1)
    assert (lt.n1, bm.n1) == (n1, n1) and lt.diagonals == bm.diagonals == len(diags)
    assert sorted(lt.rotation_steps()) == sorted(bm.rotation_steps())
    ctx.generate_rotation_keys(lt.rotation_steps())
    x = rng.uniform(-1, 1, (2, n)) + 1j * rng.uniform(-1, 1, (2, n))
    X = ctx.encrypt(x).level_to(level)
    ct = X._ct if device is None else resident(X, device)._ct
    want = _core.apply_linear_transform(eng, X._ct, lt)
    for cache in (True, False):
        m = bm.encoded(eng, level, cache)
        got, counts = _core.linalg_apply_map(eng, ct, m, 1)
        _same(want, got, device)
        assert counts["plain_mults"] == 2 * len(diags) and counts["encodes"] == (0 if cache else len(diags))
    dev_lt = _core.apply_linear_transform(eng, ct, lt)
    _same(want, dev_lt, device)
    assert bits(ctx.decrypt(X._like(want, True)), _reference(diags, x)) >= 20


@pytest.mark.parametrize("device", DEVICES)
def test_composed_rotations_in_the_engine_match_the_host(device):
    """Power-of-two keys only: the engine's babies and giants without their own key
    are composed (full key switches), on the host and on the device alike."""
    c = ht.Context.from_preset("toy-insecure", seed=913)
    rng = np.random.default_rng(8)
    n, eng, level = c.slots, c._engine, 2
    diags = _diagonals(rng, n, [0, 3, 5, 6, 40, 45, 200, n - 7])
    bm = _as_block_map(n, diags, 8)
    c.generate_rotation_keys(sorted({s % n for k in range(int(math.log2(n))) for s in (1 << k, -(1 << k))}))
    m = bm.encoded(eng, level, True)
    x = rng.uniform(-1, 1, n)
    X = c.encrypt(x).level_to(level)
    want, _ = _core.linalg_apply_map(eng, X._ct, m, 1)
    got, _ = _core.linalg_apply_map(eng, resident(X, device)._ct, m, 1)
    _same(want, got, device)
    assert bits(c.decrypt(X._like(want, True)).real, _reference(diags, x).real) >= 20


@pytest.mark.parametrize("device", [None] + DEVICES)
def test_a_block_map_within_a_workspace_is_the_same_ciphertext(ctx, device):
    """A block map over two groups evaluated within a workspace (BlockMap.work_bytes:
    below one baby, a few babies, most of them): its babies made a chunk at a time and
    the giant sums added chunk by chunk, yet the unbounded host ciphertext word for word,
    on the host or resident, cached or streamed; every diagonal multiplied and encoded
    once, more decompositions."""
    rng = np.random.default_rng(17)
    n, eng, level = ctx.slots, ctx._engine, 3
    diags = _diagonals(rng, n, list(range(44)) + [64, 65, 300, n - 1, n - 40])
    bm = _as_block_map(n, diags, 16)
    ctx.generate_rotation_keys(bm.rotation_steps())
    x = rng.uniform(-1, 1, (2, n)) + 1j * rng.uniform(-1, 1, (2, n))
    X = ctx.encrypt(x).level_to(level)
    ct = X._ct if device is None else resident(X, device)._ct
    unit = 2 * (level + 1) * ctx.ring_degree * 8  # one baby of one group
    for cache in (True, False):
        m = bm.encoded(eng, level, cache)
        m.work_bytes = 0
        want, c0 = _core.linalg_apply_map(eng, X._ct, m, 1)
        assert bits(ctx.decrypt(X._like(want, True)), _reference(diags, x)) >= 20
        for wb in (1, 8 * unit, 30 * unit):
            m.work_bytes = wb
            got, c = _core.linalg_apply_map(eng, ct, m, 1)
            _same(want, got, device)
            assert c["plain_mults"] == c0["plain_mults"] == 2 * len(diags)
            assert c["encodes"] == c0["encodes"] == (0 if cache else len(diags))
            assert c["decompositions"] > c0["decompositions"] and c["rotations"] == c0["rotations"]


def _operands(ctx, rng):
    m, d, r, p = 8, 24, 2, 16
    X = rng.uniform(-1, 1, (m, d))
    A = rng.uniform(-1, 1, (d, r)) / math.sqrt(d)
    B = rng.uniform(-1, 1, (r, p)) / math.sqrt(r)
    W = rng.uniform(-1, 1, (d, p)) / math.sqrt(d)
    return X, A, B, W


def _cases(ctx, rng):
    X, A, B, W = _operands(ctx, rng)
    x = ctx.encrypt(X, layout="matrix")
    v = rng.uniform(-1, 1, X.shape[1])
    return {
        "cpmm": (la.matmul, (x, W), X @ W),
        "ccmm": (la.matmul, (x, ctx.encrypt(W, layout="matrix")), X @ W),
        "lora": (products.lora, (x, ctx.encrypt(A, layout="matrix"), ctx.encrypt(B, layout="matrix")), X @ A @ B),
        "vector": (la.matmul, (ctx.encrypt(v), W), v @ W),
    }


def _on(device, args):
    return tuple(resident(a, device) if isinstance(a, ht.CipherTensor) else a for a in args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["cpmm", "ccmm", "lora", "vector"])
def test_products_on_resident_ciphertexts_match_the_host(ctx, rng, device, case):
    fn, args, ref = _cases(ctx, rng)[case]
    want = fn(*args)
    want_cost = la.last_cost()
    got = fn(*_on(device, args))
    got_cost = la.last_cost()
    assert got.device == want.device or isinstance(got._ct, _core.DeviceCiphertext)
    assert got.shape == want.shape
    _same(want._ct, got._ct, device)
    for field in ("rotations", "hoisted", "relinearizations", "plain_mults", "ct_mults", "rescales", "levels"):
        assert getattr(got_cost, field) == getattr(want_cost, field), field
    assert bits(ctx.decrypt(got), ref) >= 17


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", ["few", "power-of-two"])
def test_key_policies_on_resident_ciphertexts(device, policy):
    """Chained rotations ("few") and composed ones ("power-of-two") in the products on the device."""
    c = ht.Context.from_preset("toy-insecure", seed=915, auto_keys=True, key_policy=policy)
    rng = np.random.default_rng(9)
    X, _, _, W = _operands(c, rng)
    x, w = c.encrypt(X, layout="matrix"), c.encrypt(W, layout="matrix")
    for args, ref in (((x, w), X @ W), ((x, W), X @ W)):
        want = la.matmul(*args)
        got = la.matmul(*_on(device, args))
        _same(want._ct, got._ct, device)
        assert bits(c.decrypt(got), ref) >= 17


@pytest.mark.parametrize("device", DEVICES)
def test_streamed_weights_on_resident_ciphertexts(device):
    """No plaintext budget: the map's diagonals are encoded giant by giant and uploaded per use."""
    c = ht.Context.from_preset("toy-insecure", seed=917, auto_keys=True)
    la.set_plaintext_budget(c, 0)
    rng = np.random.default_rng(10)
    X, _, _, W = _operands(c, rng)
    x = c.encrypt(X, layout="matrix")
    want = la.matmul(x, W)
    assert la.last_cost().encodes > 0
    got = la.matmul(resident(x, device), W)
    _same(want._ct, got._ct, device)
    assert bits(c.decrypt(got), X @ W) >= 17


@pytest.mark.parametrize("device", DEVICES)
def test_program_steps_on_resident_ciphertexts(ctx, rng, device):
    """A hand-written program (rotate-sum, add, gather, plaintext product) and the
    per-step calls on the device: the host's ciphertexts word for word."""
    eng = ctx._engine
    ctx.generate_rotation_keys([1, 2])
    v = rng.uniform(-1, 1, (3, ctx.slots))
    x = ctx.encrypt(v)
    dx = resident(x, device)
    prog = _core.LinalgProgram()
    r0 = prog.add_input()
    s = prog.rotate_sum(r0, [1, 2])
    t = prog.add(s, r0)
    g = prog.gather(t, [2, 0])
    m = prog.mul_values(g, np.full((1, ctx.slots), 0.5, dtype=np.complex128))
    (want, want_t), want_counts = prog.run(eng, [x._ct], [m, t])
    (got, got_t), got_counts = prog.run(eng, [dx._ct], [m, t])
    _same(want, got, device)
    _same(want_t, got_t, device)
    assert got_counts == want_counts
    ref = 0.5 * (2 * v + np.roll(v, -1, -1) + np.roll(v, -2, -1) + np.roll(v, -3, -1))[[2, 0]]
    assert bits(np.asarray(eng.decrypt(got)).real, ref) >= 20
    _same(_core.linalg_gather(eng, x._ct, [1, 1]), _core.linalg_gather(eng, dx._ct, [1, 1]), device)
    _same(_core.linalg_rotate_sum(eng, x._ct, [2])[0], _core.linalg_rotate_sum(eng, dx._ct, [2])[0], device)
    z = _core.linalg_zeros(eng, dx._ct, 2)
    assert (z.device, z.batch, z.level) == (device, 2, dx._ct.level)
    assert not np.any(_host(z).limbs())


@pytest.mark.parametrize("device", DEVICES)
def test_operands_in_two_places_are_refused(ctx, rng, device):
    X, A, B, W = _operands(ctx, rng)
    x, w = ctx.encrypt(X, layout="matrix"), ctx.encrypt(W, layout="matrix")
    a, b = ctx.encrypt(A, layout="matrix"), ctx.encrypt(B, layout="matrix")
    with pytest.raises(ValueError, match=r"different places.*x\.to\(device\)"):
        la.matmul(resident(x, device), w)
    with pytest.raises(ValueError, match=r"different places.*x\.to\(device\)"):
        products.lora(x, resident(a, device), b)


def test_a_resident_tensor_serializes_as_its_host_copy(ctx, rng):
    x = ctx.encrypt(rng.uniform(-1, 1, 12))
    dx = resident(x, "cpu")
    back = ht.from_bytes(dx.to_bytes(), ctx)
    assert isinstance(back._ct, _core.Ciphertext) and np.array_equal(back.limbs(), x.limbs())
