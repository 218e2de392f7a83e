"""Key plans of hetensor.linalg: routes are decided from shapes, layouts and levels only.

Properties, over seeded random shapes, layouts, levels and operations on a
toy ring (N = 2^12):

1. the keys of ``ctx.rotation_steps_for(op, ...)`` are enough: the operation
   then never raises ``MissingKeyError``, and uses no other key;
2. a ``MissingKeyError`` lists every missing step of the whole operation at
   once: generating ``err.steps`` once, the retry never raises.

Plus the key policies, ``auto_keys`` and ``key_bytes``. Every result is also
checked against float64 with bits asserted.
"""

from __future__ import annotations

import gc
import logging
import warnings

import numpy as np
import pytest

import hetensor as ht
from hetensor import linalg as la
from hetensor.layout import Layout
from hetensor.linalg import keypolicy

from conftest import bits

PRECISION = 16  # up to four levels of products on N = 2^12


def _shape(rng, lo=2, hi=40):
    return int(rng.integers(lo, hi))


def make_case(seed: int):
    """A random operation: (op name for rotation_steps_for, shapes, layout specs, level, kwargs, runner)."""
    rng = np.random.default_rng(seed)
    op = ["cpmm", "pcmm", "ccmm", "ccmm", "lora", "sum", "broadcast", "transpose", "relayout", "add"][seed % 10]
    level = int(rng.integers(4, 7))  # toy-insecure: 6 levels
    m, n, p = _shape(rng), _shape(rng), _shape(rng)
    lay = lambda: ["matrix", "matrix.T", "flat"][int(rng.integers(0, 3))]  # noqa: E731
    if op == "cpmm":
        return op, [(m, n), (n, p)], [lay(), None], level, {}
    if op == "pcmm":
        return op, [(p, m), (m, n)], [None, lay()], level, {}
    if op == "ccmm":
        if seed % 20 == 3:  # thin right operand, rows stored in lanes: the backward products
            return op, [(n, m), (m, int(rng.integers(1, 9)))], ["matrix.T", "matrix"], level, {}
        method = [None, None, "jkls"][int(rng.integers(0, 3))]
        return op, [(m, n), (n, p)], [lay(), lay()], level, {"method": method}
    if op == "lora":
        r = int(rng.integers(1, 9))
        return op, [(m, n), (n, r), (r, p)], ["matrix", lay(), lay()], level, {}
    if op == "sum":
        return op, [(m, n)], [lay()], level, {"dim": [0, 1, None][int(rng.integers(0, 3))]}
    if op == "broadcast":
        vec = (1, n) if rng.integers(0, 2) else (m, 1)
        return op, [vec, (m, n)], ["matrix", "matrix"], level, {}
    if op == "transpose":
        return op, [(m, n)], [lay()], level, {}
    if op == "relayout":
        dst = Layout((m, n), 2048, bm=int(2 ** rng.integers(3, 7)))
        return op, [(m, n)], [lay(), dst], level, {}
    return op, [(m, n), (m, n)], [lay(), lay()], level, {}


def _encrypt(ctx, arr, spec, level):
    if spec in (None, "flat"):
        t = ctx.encrypt(arr)
    else:
        t = ctx.encrypt(arr, layout=spec)
    return t.level_to(level) if level < t.level else t


def run_case(ctx, case, rng):
    """Runs the case on fresh operands; returns (result, float64 reference)."""
    op, shapes, lays, level, kw = case
    arrs = [rng.uniform(-1, 1, s) / np.sqrt(max(s)) for s in shapes]
    if op in ("cpmm", "pcmm"):
        xi = 0 if op == "cpmm" else 1
        x = _encrypt(ctx, arrs[xi], lays[xi], level)
        out = x @ arrs[1] if op == "cpmm" else arrs[0] @ x
        return out, arrs[0] @ arrs[1]
    xs = [_encrypt(ctx, a, l, level) if not isinstance(l, Layout) else None for a, l in zip(arrs, lays)]
    if op == "ccmm":
        return la.matmul(xs[0], xs[1], method=kw.get("method")), arrs[0] @ arrs[1]
    if op == "lora":
        return la.lora(*xs), arrs[0] @ arrs[1] @ arrs[2]
    if op == "sum":
        return xs[0].sum(kw["dim"]), arrs[0].sum(kw["dim"])
    if op == "broadcast":
        return xs[0].broadcast_to(xs[1]), np.broadcast_to(arrs[0], shapes[1])
    if op == "transpose":
        return la.materialize_transpose(xs[0]), arrs[0].T
    if op == "relayout":
        return xs[0].to_layout(lays[1]), arrs[0]
    return xs[0] + xs[1], arrs[0] + arrs[1]


def steps_for(ctx, case):
    op, shapes, lays, level, kw = case
    return ctx.rotation_steps_for(op, *shapes, layouts=lays, level=level, **kw)


SEEDS = list(range(30))


POLICIES = ["exact", "few", "power-of-two"]


@pytest.mark.parametrize("seed", SEEDS)
def test_rotation_steps_for_is_exactly_enough(seed):
    case = make_case(seed)
    policy = POLICIES[(seed // 10) % 3]
    ctx = ht.Context.from_preset("toy-insecure", seed=100 + seed, key_policy=policy)
    la.set_plaintext_budget(ctx, 32 << 20)
    steps = steps_for(ctx, case)
    ctx.generate_rotation_keys(steps)
    out, ref = run_case(ctx, case, np.random.default_rng(seed))
    assert bits(ctx.decrypt(out), ref) >= PRECISION, case
    used = set(la.last_cost().rotation_steps) if la.last_cost() else set()
    keys = set(keypolicy.keys_for_steps(ctx.slots, used, policy))
    assert keys <= set(steps), (case, policy, sorted(keys - set(steps)))
    del ctx, out
    gc.collect()


@pytest.mark.parametrize("seed", SEEDS)
def test_missing_key_error_lists_every_step_at_once(seed):
    case = make_case(seed)
    ctx = ht.Context.from_preset("toy-insecure", seed=200 + seed, key_policy=POLICIES[(seed // 10) % 3])
    la.set_plaintext_budget(ctx, 32 << 20)
    rng = np.random.default_rng(seed)
    try:
        out, ref = run_case(ctx, case, rng)
    except ht.MissingKeyError as err:
        assert err.steps and set(err.steps) <= set(steps_for(ctx, case))
        ctx.generate_rotation_keys(err.steps)
        out, ref = run_case(ctx, case, np.random.default_rng(seed))  # never raises again
    assert bits(ctx.decrypt(out), ref) >= PRECISION, case
    del ctx, out
    gc.collect()


def test_routes_do_not_depend_on_existing_keys(rng):
    """Keys for another route (jkls) present or not, the planner picks the same route and steps."""
    ctx = ht.Context.from_preset("toy-insecure", seed=31)
    before = ctx.rotation_steps_for("ccmm", (16, 40), (40, 4))
    ctx.generate_rotation_keys(ctx.rotation_steps_for("ccmm", (16, 40), (40, 4), method="jkls"))
    assert ctx.rotation_steps_for("ccmm", (16, 40), (40, 4)) == before


def test_error_names_the_operation_and_memory(rng):
    ctx = ht.Context.from_preset("toy-insecure", seed=32)
    x = ctx.encrypt(rng.uniform(-1, 1, (8, 8)), layout="matrix")
    with pytest.raises(ht.MissingKeyError) as err:
        x @ rng.uniform(-1, 1, (8, 8))
    msg = str(err.value)
    assert "cannot multiply" in msg and "MiB" in msg and "generate_rotation_keys" in msg
    assert sorted(err.value.steps) == ctx.rotation_steps_for("cpmm", (8, 8), (8, 8))


def test_key_bytes_before_generating(rng):
    ctx = ht.Context.from_preset("toy-insecure", seed=33)
    steps = ctx.rotation_steps_for("ccmm", (8, 12), (12, 6))
    have = ctx.key_bytes()
    predicted = ctx.key_bytes(steps)
    assert predicted == len(steps) * ctx._engine.relin_key_bytes() > 0
    ctx.generate_rotation_keys(steps)
    assert ctx.key_bytes() - have == predicted
    assert ctx.key_bytes(steps) == 0  # nothing left to add


def test_auto_keys_makes_missing_keys_with_a_log_line(rng, caplog):
    ctx = ht.Context.from_preset("toy-insecure", seed=34, auto_keys=True)
    assert ctx.auto_keys
    X, Y = rng.uniform(-1, 1, (8, 12)), rng.uniform(-1, 1, (12, 6))
    x, y = ctx.encrypt(X, layout="matrix"), ctx.encrypt(Y, layout="matrix")
    with caplog.at_level(logging.INFO, logger="hetensor"), warnings.catch_warnings():
        warnings.simplefilter("error")
        z = x @ y
    assert bits(ctx.decrypt(z), X @ Y) >= 18
    assert any("making" in r.getMessage() and "rotation key" in r.getMessage() for r in caplog.records)
    assert set(ctx.rotation_steps_for("ccmm", (8, 12), (12, 6))) <= set(ctx.rotation_steps)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hetensor"):
        x @ y  # every key exists now: no new line
    assert not caplog.records


def test_key_policy_validation():
    ctx = ht.Context.from_preset("toy-insecure", seed=35)
    assert ctx.key_policy == "exact"
    with pytest.raises(ValueError, match="key policy"):
        ctx.key_policy = "all"
    ctx.key_policy = "few"
    assert la.key_policy(ctx) == "few"


def test_power_of_two_terms():
    slots = 2048
    for s in list(range(1, 300)) + [1023, 1024, 1025, 2047, -1, -3, -1000]:
        terms = la.power_of_two_terms(s, slots)
        assert sum(terms) % slots == s % slots
        assert all(abs(t) & (abs(t) - 1) == 0 for t in terms)
        assert len(terms) <= 6 + 1  # non-adjacent form: at most log2(slots) / 2 + 1 digits


@pytest.mark.parametrize("op,shapes,kw", [
    ("cpmm", [(12, 40), (40, 20)], {}),
    ("ccmm", [(10, 12), (12, 9)], {"method": "jkls"}),
    ("lora", [(16, 40), (40, 4), (4, 24)], {}),
])
def test_power_of_two_policy(op, shapes, kw, rng):
    """Keys for +-2^k only: rotations are composed, results unchanged."""
    ctx = ht.Context.from_preset("toy-insecure", seed=36, key_policy="power-of-two")
    steps = ctx.rotation_steps_for(op, *shapes, **kw)
    exact = set(ht.Context.from_preset("toy-insecure", seed=37).rotation_steps_for(op, *shapes, **kw))
    assert all(s & (s - 1) == 0 or (ctx.slots - s) & (ctx.slots - s - 1) == 0 for s in steps)
    assert len(steps) <= 2 * 11 and len(steps) < len(exact)
    ctx.generate_rotation_keys(steps)
    case = (op, shapes, ["matrix"] * len(shapes), ctx.max_level, kw)
    out, ref = run_case(ctx, case, rng)
    assert bits(ctx.decrypt(out), ref) >= PRECISION
    assert set(ctx.rotation_steps) == set(steps)  # nothing else was made


def test_prepare_lora_lists_its_keys_at_once(rng):
    """Preparing an adapter (both maps and their doublings) is one planned operation too."""
    ctx = ht.Context.from_preset("toy-insecure", seed=38)
    X, A, B = rng.uniform(-1, 1, (16, 40)), rng.uniform(-1, 1, (40, 4)) / 6, rng.uniform(-1, 1, (4, 24)) / 2
    x, a, b = (ctx.encrypt(v, layout="matrix") for v in (X, A, B))
    with pytest.raises(ht.MissingKeyError) as err:
        la.prepare_lora(a, b, x)
    ctx.generate_rotation_keys(err.value.steps)
    pa, pb = la.prepare_lora(a, b, x)          # never raises again
    with pytest.raises(ht.MissingKeyError) as err:
        la.lora(x, pa, pb)                     # the left side's own steps
    ctx.generate_rotation_keys(err.value.steps)
    assert bits(ctx.decrypt(la.lora(x, pa, pb)), X @ A @ B) >= PRECISION
