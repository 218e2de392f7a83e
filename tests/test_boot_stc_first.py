"""Bootstrapping with SlotToCoeff first (``bootstrap(stc_first=True)``) at
toy-boot-insecure: SlotToCoeff runs on the input's last 3 levels, before
ModRaise, and the result comes back 3 levels above the fresh level. Every
result is compared with the float64 input (bits asserted)."""

import numpy as np
import pytest

import hetensor as ht
from hetensor import approx
from hetensor.boot import MAX_INPUT_BOUND

from conftest import bits


@pytest.fixture(scope="module")
def bctx():
    return ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=41)


@pytest.fixture(autouse=True)
def _one_thread(restore_threads):
    ht.set_num_threads(1)


def test_stc_first_is_more_precise_and_lands_three_levels_higher(bctx):
    x = np.random.default_rng(1).uniform(-1, 1, bctx.slots)
    ct = bctx.encrypt(x)
    early = ct.level_to(3).bootstrap(stc_first=True)
    assert early.level == bctx.fresh_level + 3
    classic = ct.level_to(0).bootstrap()
    assert classic.level == bctx.fresh_level
    b_early, b_classic = bits(bctx.decrypt(early), x), bits(bctx.decrypt(classic), x)
    print(f"stc_first {b_early:.1f} bits, classic {b_classic:.1f} bits")
    # EvalMod's error reaches the slots without SlotToCoeff's sqrt(N/2) gain
    # (and stc_first's cheaper even cosine gives 1.5 bits of it back): 29.0
    # against 28.1 bits measured at N = 2^12 (the gap widens by 2 bits at 2^16).
    assert b_early >= 28.0
    assert b_early >= b_classic
    # the output takes part in ordinary arithmetic with lower-level tensors
    y = np.random.default_rng(2).uniform(-1, 1, bctx.slots)
    assert bits(bctx.decrypt(early * bctx.encrypt(y) + classic), x * y + x) >= 24


def test_stc_first_from_above_level_3_and_complex_values(bctx):
    rng = np.random.default_rng(3)
    z = rng.uniform(-0.7, 0.7, bctx.slots) + 1j * rng.uniform(-0.7, 0.7, bctx.slots)
    out = bctx.encrypt(z).bootstrap(stc_first=True)  # from the fresh level: brought to 3 first
    assert out.level == bctx.fresh_level + 3
    assert bits(bctx.decrypt(out), z) >= 28


@pytest.mark.parametrize("size", [1.0, -0.9, 4.0, MAX_INPUT_BOUND])
def test_stc_first_error_bound_holds_for_constants(bctx, size):
    """Every coefficient holds a value (no spreading over N), so the sine's bend
    meets them all: the larger message ratio of this path keeps it small, and
    error_bound(b, stc_first=True) models it."""
    x = np.full(bctx.slots, size)
    out = bctx.encrypt(x).level_to(3).bootstrap(stc_first=True)
    err = float(np.max(np.abs(bctx.decrypt(out) - x)))
    model = bctx._bootstrapper.error_bound(abs(size), stc_first=True)
    assert err <= model
    assert out._ct.bound == pytest.approx(abs(size) + model)
    if abs(size) <= 1:
        assert -np.log2(err) >= 28


def test_stc_first_refuses_inputs_below_level_3(bctx):
    ct = bctx.encrypt(np.full(bctx.slots, 0.5)).level_to(2)
    with pytest.raises(ValueError, match=r"stc_first=True.*level 2.*level >= 3"):
        ct.bootstrap(stc_first=True)
    with pytest.raises(ValueError, match="multiply by a constant below 1"):
        (bctx.encrypt(np.full(bctx.slots, 0.5)) * 32.0).bootstrap(stc_first=True)


def test_stc_first_chain_keeps_its_precision(bctx):
    """x <- p(w x + b) from level 7 down to level 3, then bootstrap with
    stc_first, eight times: the precision after each bootstrap is measured
    against float64 and does not drift by more than a bit."""
    p = approx.chebyshev(np.sin, -1, 1, 7)
    rng = np.random.default_rng(5)
    n = bctx.slots
    x = rng.uniform(-1, 1, n)
    ct, ref, per_round = bctx.encrypt(x).level_to(3).bootstrap(stc_first=True), x.copy(), []
    for _ in range(8):
        w, b = rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n)
        ct = (ct * w + b).polyval(p)
        ref = p(ref * w + b)
        assert ct.level == 3  # multiply + degree-7 polynomial: the 4 levels between bootstraps
        ct = ct.bootstrap(stc_first=True)
        per_round.append(bits(bctx.decrypt(ct), ref))
    print("bits per bootstrap:", " ".join(f"{b:.1f}" for b in per_round))
    assert min(per_round) >= 27
    assert min(per_round) >= per_round[0] - 1.0


def test_stc_first_bootstrap_many(bctx):
    rng = np.random.default_rng(7)
    n = bctx.slots
    # a batch of two ciphertexts pairs with itself; the odd one out takes the
    # single real path (one EvalMod)
    xs = [rng.uniform(-1, 1, n), np.full(n, 0.8), rng.uniform(-1, 1, (2, n)), rng.uniform(-1, 1, n)]
    outs = bctx.bootstrap_many([bctx.encrypt(v).level_to(3) for v in xs], stc_first=True)
    for o, v in zip(outs, xs):
        assert o.level == bctx.fresh_level + 3
        assert bits(bctx.decrypt(o), v) >= 27
