"""A whole bootstrap in one C++ call (boot/bootstrapper) equals, word for
word, the op-by-op Python sequence it replaced (tests/_boot_reference.py):
single bootstraps in both orders (one or two EvalMods), complex-packed pairs
(and the odd-multiplier fallback to two singles), bootstrap_many, parameters
that take the other branches (no arcsine, CoeffToSlot headroom), and
device-resident inputs. Residues, level, scale and tracked bound must all be
equal; the results also decrypt against float64."""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core
from hetensor.boot import BootParams, Bootstrapper

import _boot_reference as ref
from conftest import DEVICES, bits, resident


@pytest.fixture(scope="module")
def bctx():
    return ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=61)


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def _same(got, want) -> None:
    if isinstance(got, _core.DeviceCiphertext):
        got = _core.device_download(got)
    assert (got.level, got.size, got.batch) == (want.level, want.size, want.batch)
    assert got.scale == want.scale and got.bound == want.bound
    assert np.array_equal(got.limbs(), want.limbs())


def _input(ctx, x, level):
    return ctx.encrypt(x).level_to(level)


def _pair_equals_the_python_sequence(ctx, boot, first, second, stc_first, min_bits) -> None:
    """boot.bootstrap_pair of two real inputs, each (ciphertext, float64 values, bound): word for word
    the Python sequence's pair, and each output within ``min_bits`` of its values."""
    (X, x, bx), (Y, y, by) = first, second
    ga, gb = boot.bootstrap_pair(X._ct, Y._ct, bx, by, stc_first)
    wa, wb = ref.bootstrap_pair(boot, X._ct, Y._ct, bx, by, stc_first)
    _same(ga, wa)
    _same(gb, wb)
    assert bits(ctx.decrypt(X._like(ga)).real, x) >= min_bits
    assert bits(ctx.decrypt(X._like(gb)).real, y) >= min_bits


@pytest.mark.parametrize("stc_first", [True, False])
@pytest.mark.parametrize("real_values", [True, False])
def test_one_bootstrap_equals_the_python_sequence(bctx, stc_first, real_values):
    boot = bctx._bootstrapper
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, bctx.slots)
    if not real_values:
        x = x + 1j * rng.uniform(-1, 1, bctx.slots)
    X = _input(bctx, x, 4)
    bound = float(np.max(np.abs(x)))
    got = boot.bootstrap(X._ct, bound, stc_first, real_values=real_values)
    _same(got, ref.bootstrap(boot, X._ct, bound, stc_first, real_values))
    out = bctx.decrypt(X._like(got))
    assert bits(out.real if real_values else out, x.real if real_values else x) >= 22


@pytest.mark.parametrize("stc_first", [True, False])
def test_a_pair_equals_the_python_sequence(bctx, stc_first):
    boot = bctx._bootstrapper
    rng = np.random.default_rng(6)
    x, y = rng.uniform(-1, 1, bctx.slots), 0.5 * rng.uniform(-1, 1, bctx.slots)
    X, Y = _input(bctx, x, 5), _input(bctx, y, 3)
    _pair_equals_the_python_sequence(bctx, boot, (X, x, 1.0), (Y, y, 0.5), stc_first, 22)


def test_bootstrap_many_equals_pairs_and_a_single(bctx):
    boot = bctx._bootstrapper
    rng = np.random.default_rng(7)
    xs = [rng.uniform(-1, 1, bctx.slots) * s for s in (1.0, 0.5, 0.25)]
    ts = [bctx.encrypt(v) for v in xs]
    out = bctx.bootstrap_many(ts)
    bounds = [max(abs(lo), abs(hi)) for lo, hi in (t.value_range for t in ts)]
    wa, wb = ref.bootstrap_pair(boot, ts[0]._ct, ts[1]._ct, bounds[0], bounds[1], True)
    wc = ref.bootstrap(boot, ts[2]._ct, bounds[2], True, real_values=True)
    for o, w, v in zip(out, (wa, wb, wc), xs):
        _same(o._ct, w)
        assert bits(bctx.decrypt(o), v) >= 22


@pytest.mark.parametrize("params, order", [
    # no arcsine (the last double angle halves), 2 bits of CoeffToSlot headroom
    (BootParams(k_bound=16, double_angles=2, message_ratio_bits=8, arcsine_degree=0, cts_headroom_bits=2),
     "classic"),
    # degree-5 arcsine; the pre-multiplier 1 is odd, so a pair is two singles
    (BootParams(k_bound=16, double_angles=2, message_ratio_bits=15, arcsine_degree=5), "stc_first"),
])
def test_other_parameters_equal_the_python_sequence(params, order):
    from hetensor.boot import choose_cos_degree

    em = params.eval_mod_levels(choose_cos_degree(params))
    level_bits = [45] * 7 + [60] * (em + params.cts_levels)  # CoeffToSlot and EvalMod on 60-bit primes
    bctx = ht.Context.from_params(log_n=12, levels=len(level_bits), scale_bits=45, first_prime_bits=60, dnum=3,
                                  level_bits=level_bits, allow_insecure=True, seed=62)
    boot = Bootstrapper(bctx, params, order)
    boot.generate_keys()
    stc_first = order == "stc_first"
    rng = np.random.default_rng(8)
    x, y = rng.uniform(-1, 1, bctx.slots), rng.uniform(-1, 1, bctx.slots)
    X, Y = _input(bctx, x, 4), _input(bctx, y, 4)
    _same(boot.bootstrap(X._ct, 1.0, stc_first), ref.bootstrap(boot, X._ct, 1.0, stc_first))
    _pair_equals_the_python_sequence(bctx, boot, (X, x, 1.0), (Y, y, 1.0), stc_first, 18)


@pytest.mark.parametrize("device", DEVICES)
def test_a_resident_bootstrap_in_one_call_equals_the_python_sequence(bctx, device):
    boot = bctx._bootstrapper
    rng = np.random.default_rng(9)
    x, y = rng.uniform(-1, 1, bctx.slots), rng.uniform(-1, 1, bctx.slots)
    X, Y = _input(bctx, x, 3), _input(bctx, y, 3)
    dX, dY = resident(X, device), resident(Y, device)
    got = boot.bootstrap(dX._ct, 1.0, True, real_values=True)
    assert isinstance(got, _core.DeviceCiphertext) and got.device == device
    _same(got, ref.bootstrap(boot, X._ct, 1.0, True, True))
    ga, gb = boot.bootstrap_pair(dX._ct, dY._ct, 1.0, 1.0, False)
    wa, wb = ref.bootstrap_pair(boot, X._ct, Y._ct, 1.0, 1.0, False)
    _same(ga, wa)
    _same(gb, wb)
    assert bits(bctx.decrypt(X._like(gb)).real, y) >= 22


@pytest.mark.parametrize("stc_first", [True, False])
def test_the_error_bound_is_the_python_formula(bctx, stc_first):
    boot = bctx._bootstrapper
    for b in (0.0, 0.25, 1.0, 3.0, 8.0):
        assert boot.error_bound(b, stc_first) == ref.error_bound(boot, b, stc_first)


def test_the_executor_refuses_bad_plans_and_inputs(bctx):
    boot = bctx._bootstrapper
    eng = bctx._engine
    with pytest.raises(ValueError, match="needs the CoeffToSlot and SlotToCoeff transforms"):
        _core.BootExecutor(_core.BootPlan())
    plan = boot._plan(True)
    plan.arcsine_degree = 0
    with pytest.raises(ValueError, match="stc_first order needs an arcsine"):
        _core.BootExecutor(plan)
    plan = boot._plan(False)
    plan.input_scale = float("nan")
    with pytest.raises(ValueError, match="must be positive"):
        _core.BootExecutor(plan)
    ex = boot.executor(True)
    x = bctx.encrypt(np.full(bctx.slots, 0.5)).level_to(3)
    with pytest.raises(ValueError, match="one bound per ciphertext"):
        ex.bootstrap_many(eng, [x._ct, x._ct], [1.0])
    with pytest.raises(ValueError, match="all be host ones or all resident"):
        ex.bootstrap_many(eng, [resident(x, "cpu")._ct, x._ct], [1.0, 1.0])
    with pytest.raises(ValueError, match="one bound per ciphertext"):
        boot.bootstrap_many([x._ct], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"ciphertext 1 may reach \|x\| = 9"):
        boot.bootstrap_many([x._ct, (x * 18.0)._ct], [1.0, 9.0])
    low = bctx.encrypt(np.full(bctx.slots, 0.5)).level_to(2)
    with pytest.raises(ValueError, match="is at level 2, below the 3 levels SlotToCoeff uses"):
        ex.bootstrap(eng, low._ct, 1.0)
    assert bits(bctx.decrypt(bctx.bootstrap(x)), np.full(bctx.slots, 0.5)) >= 20  # the refusals changed nothing
