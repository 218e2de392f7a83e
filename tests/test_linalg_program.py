"""One C++ call per matrix product (cpp/linalg/program, hetensor.linalg.runmode).

``matmul`` and ``lora`` plan in Python, record their steps into a
``_core.LinalgProgram`` and execute it in one call. The results must be the
ciphertexts of the step-by-step run, bit for bit, with the same cost counts;
no per-step C++ call may happen during the run; the program refuses what it
cannot run with a clear error. Toy ring (N = 2^12).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hetensor import _core
from hetensor import linalg as la
from hetensor.linalg import products, runmode

from conftest import bits, linalg_context

STEP_CALLS = ("linalg_apply_map", "linalg_rotate_sum", "linalg_bilinear", "linalg_gather")


@pytest.fixture(scope="module")
def ctx():
    yield from linalg_context(909, auto_keys=True)


def step_by_step(fn, *args):
    """The operation run op by op (keys made first by a planned run of the same call)."""
    fn(*args)
    return fn.unplanned(*args)


def no_step_calls(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a per-step linalg call ran during a one-call product")

    for name in STEP_CALLS:
        monkeypatch.setattr(_core, name, refuse)


@pytest.mark.parametrize("case", ["ccmm", "cpmm", "lora", "vector"])
def test_one_call_equals_step_by_step(ctx, rng, case, monkeypatch):
    m, d, r, p = 8, 24, 2, 16
    X = rng.uniform(-1, 1, (m, d))
    A = rng.uniform(-1, 1, (d, r)) / math.sqrt(d)
    B = rng.uniform(-1, 1, (r, p)) / math.sqrt(r)
    W = rng.uniform(-1, 1, (d, p)) / math.sqrt(d)
    x = ctx.encrypt(X, layout="matrix")
    if case == "ccmm":
        y = ctx.encrypt(W, layout="matrix")
        fn, args, ref = products.matmul, (x, y), X @ W
    elif case == "cpmm":
        fn, args, ref = products.matmul, (x, W), X @ W
    elif case == "lora":
        a, b = ctx.encrypt(A, layout="matrix"), ctx.encrypt(B, layout="matrix")
        fn, args, ref = products.lora, (x, a, b), X @ A @ B
    else:  # a flat vector: relayout (a map) inside the product
        v = rng.uniform(-1, 1, d)
        x = ctx.encrypt(v)
        fn, args, ref = products.matmul, (x, W), v @ W
    want = step_by_step(fn, *args)
    want_cost = la.last_cost()
    with monkeypatch.context() as mp:
        no_step_calls(mp)
        got = fn(*args)
    got_cost = la.last_cost()
    assert isinstance(got._ct, _core.Ciphertext)
    assert (got.level, got.scale, got.shape) == (want.level, want.scale, want.shape)
    assert np.array_equal(got.limbs(), want.limbs())
    for field in ("rotations", "hoisted", "relinearizations", "plain_mults", "ct_mults", "rescales", "levels"):
        assert getattr(got_cost, field) == getattr(want_cost, field), field
    assert got_cost.rotation_steps == want_cost.rotation_steps
    assert bits(ctx.decrypt(got), ref) >= 17


def test_prepared_right_operand_is_a_program_input(ctx, rng, monkeypatch):
    X = rng.uniform(-1, 1, (8, 16))
    Y = rng.uniform(-1, 1, (16, 8)) / 4
    x, y = ctx.encrypt(X, layout="matrix"), ctx.encrypt(Y, layout="matrix")
    py = la.prepare(y, x)
    want = step_by_step(products.matmul, x, py)
    with monkeypatch.context() as mp:
        no_step_calls(mp)
        got = la.matmul(x, py)
    assert np.array_equal(got.limbs(), want.limbs())
    assert bits(ctx.decrypt(got), X @ Y) >= 17


def test_program_refuses_bad_steps(ctx):
    prog = _core.LinalgProgram()
    r0 = prog.add_input()
    with pytest.raises(ValueError, match="reads a register"):
        prog.rotate_sum(5, [1])
    with pytest.raises(ValueError, match="reads a register"):
        prog.add(r0, 7)
    with pytest.raises(ValueError, match="rows x count"):
        prog.mul_values(r0, np.ones(4, dtype=np.complex128))
    out = prog.rotate_sum(r0, [1])
    assert (prog.inputs, prog.registers, len(prog)) == (1, 2, 1)
    with pytest.raises(ValueError, match="1 inputs, got 0"):
        prog.run(ctx._engine, [], [out])
    with pytest.raises(ValueError, match="output register"):
        prog.run(ctx._engine, [ctx.encrypt(np.ones(4))._ct], [9])


def test_program_runs_recorded_steps(ctx, rng):
    v = rng.uniform(-1, 1, ctx.slots)
    x = ctx.encrypt(v)
    ctx.generate_rotation_keys([1, 2])
    prog = _core.LinalgProgram()
    r0 = prog.add_input()
    s = prog.rotate_sum(r0, [1, 2])             # v + rot1 + rot2 + rot3
    t = prog.add(s, r0)                         # + v
    m = prog.mul_values(t, np.full((1, ctx.slots), 0.5, dtype=np.complex128))  # one level
    (out,), counts = prog.run(ctx._engine, [x._ct], [m])
    assert len(counts) == 3 and counts[0]["rotations"] == 2
    ref = 0.5 * (2 * v + np.roll(v, -1) + np.roll(v, -2) + np.roll(v, -3))
    assert out.level == x.level - 1
    assert bits(ctx.decrypt(x._like(out)), ref) >= 20


def test_device_resident_operands_run_in_one_call(ctx, rng, monkeypatch):
    """Resident operands: the same one-call program, on their backend (more in test_resident_linalg.py)."""
    X = rng.uniform(-1, 1, (4, 8))
    W = rng.uniform(-1, 1, (8, 8)) / 4
    x = ctx.encrypt(X, layout="matrix")
    want = la.matmul(x, W)
    dx = x._like(_core.device_upload(x._ct, "cpu"))
    with monkeypatch.context() as mp:
        no_step_calls(mp)
        got = la.matmul(dx, W)
    assert isinstance(got._ct, _core.DeviceCiphertext)
    assert np.array_equal(_core.device_download(got._ct).limbs(), want.limbs())
    assert runmode._recorder() is None
