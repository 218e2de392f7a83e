"""The default bootstrap order, SlotToCoeff first, and its level contract at
toy-boot-insecure: SlotToCoeff runs on the input's last 3 levels, before
ModRaise, so a bootstrap takes inputs at level >= 3
(``ctx.bootstrap_contract.input_level``) and returns at ``ctx.fresh_level``;
``stc_first=False`` keeps the classic order. Every result is compared with the
float64 input (bits asserted)."""

import json

import numpy as np
import pytest

import hetensor as ht
from hetensor import _codec
from hetensor.boot import MAX_INPUT_BOUND, BootstrapContract
from hetensor.serialize import FormatError

from conftest import bits


@pytest.fixture(scope="module")
def bctx():
    return ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=41)


@pytest.fixture(scope="module")
def classic():
    return ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=42, bootstrap_order="classic")


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def test_the_contract_of_each_order(bctx, classic):
    boot = bctx._bootstrapper
    c = bctx.bootstrap_contract
    assert c == BootstrapContract("stc_first", 3, boot.early_output_level, MAX_INPUT_BOUND)
    assert c.stc_first and c.levels == 4 and bctx.fresh_level == c.output_level == 7
    k = classic.bootstrap_contract
    assert k == BootstrapContract("classic", 0, 4, MAX_INPUT_BOUND) and not k.stc_first
    # the same levels between bootstraps in both orders; the stc_first chain starts 3 levels higher
    assert bctx.usable_levels == classic.usable_levels == 4
    assert classic.fresh_level == bctx.fresh_level - 3
    assert ht.Context.from_preset("toy-insecure", seed=1).bootstrap_contract is None
    with pytest.raises(ValueError, match="bootstrap_order must be one of 'stc_first', 'classic'"):
        ht.Context.from_preset("toy-boot-insecure", bootstrap=True, bootstrap_order="early")


def test_default_is_more_precise_than_classic_and_lands_at_the_fresh_level(bctx):
    x = np.random.default_rng(1).uniform(-1, 1, bctx.slots)
    ct = bctx.encrypt(x)
    assert ct.level == bctx.fresh_level
    early = ct.level_to(3).bootstrap()
    assert early.level == bctx.fresh_level
    old = ct.level_to(0).bootstrap(stc_first=False)
    assert old.level == bctx.fresh_level - 3
    b_early, b_classic = bits(bctx.decrypt(early), x), bits(bctx.decrypt(old), x)
    print(f"stc_first {b_early:.1f} bits, classic {b_classic:.1f} bits")
    # EvalMod's error reaches the slots without SlotToCoeff's sqrt(N/2) gain
    # (and stc_first's cheaper even cosine gives 1.5 bits of it back): 29.0
    # against 28.1 bits measured at N = 2^12 (the gap widens by 2 bits at 2^16).
    assert b_early >= 28.0
    assert b_early >= b_classic
    # the output takes part in ordinary arithmetic with lower-level tensors
    y = np.random.default_rng(2).uniform(-1, 1, bctx.slots)
    assert bits(bctx.decrypt(early * bctx.encrypt(y) + old), x * y + x) >= 24


def test_the_tracked_error_follows_the_order(bctx):
    boot = bctx._bootstrapper
    x = np.full(bctx.slots, 4.0)
    e_early, e_classic = boot.error_bound(4.0, True), boot.error_bound(4.0, False)
    assert boot.error_bound(4.0) == e_early != e_classic
    early = bctx.encrypt(x).bootstrap()
    old = bctx.encrypt(x).level_to(0).bootstrap(stc_first=False)
    assert early._ct.bound == pytest.approx(4.0 + e_early)
    assert early.value_range == pytest.approx((4.0 - e_early, 4.0 + e_early), abs=1e-12)
    assert old._ct.bound == pytest.approx(4.0 + e_classic)
    assert float(np.max(np.abs(bctx.decrypt(early) - x))) <= e_early
    assert float(np.max(np.abs(bctx.decrypt(old) - x))) <= e_classic


def test_from_above_level_3_and_complex_values(bctx):
    rng = np.random.default_rng(3)
    z = rng.uniform(-0.7, 0.7, bctx.slots) + 1j * rng.uniform(-0.7, 0.7, bctx.slots)
    out = bctx.encrypt(z).bootstrap()  # from the fresh level: brought to 3 first
    assert out.level == bctx.fresh_level
    assert bits(bctx.decrypt(out), z) >= 28


@pytest.mark.parametrize("size", [1.0, -0.9, 4.0, MAX_INPUT_BOUND])
def test_error_bound_holds_for_constants(bctx, size):
    """Every coefficient holds a value (no spreading over N), so the sine's bend
    meets them all: the larger message ratio of this path keeps it small, and
    error_bound(b) (the context's order) models it."""
    x = np.full(bctx.slots, size)
    out = bctx.encrypt(x).level_to(3).bootstrap()
    err = float(np.max(np.abs(bctx.decrypt(out) - x)))
    model = bctx._bootstrapper.error_bound(abs(size))
    assert err <= model
    assert out._ct.bound == pytest.approx(abs(size) + model)
    if abs(size) <= 1:
        assert -np.log2(err) >= 28


def test_inputs_below_level_3_are_refused_with_the_way_out(bctx):
    x = np.full(bctx.slots, 0.5)
    ct = bctx.encrypt(x).level_to(2)
    for call in (ct.bootstrap, lambda: ct.bootstrap(stc_first=True)):
        with pytest.raises(ValueError, match=r"stc_first order.*level 2.*level >= 3.*stc_first=False"):
            call()
    with pytest.raises(ValueError, match=r"tensor 1 is at level 2.*level >= 3"):
        bctx.bootstrap_many([bctx.encrypt(x), ct])  # refused before any bootstrap runs
    with pytest.raises(ValueError, match="multiply by a constant below 1"):
        (bctx.encrypt(x) * 32.0).bootstrap()
    with pytest.raises(TypeError, match="stc_first must be True, False or None"):
        bctx.encrypt(x).bootstrap(stc_first=1)
    # the classic order takes it, 3 levels lower
    out = ct.bootstrap(stc_first=False)
    assert out.level == bctx.fresh_level - 3 and bits(bctx.decrypt(out), x) >= 24


def test_bootstrap_many(bctx):
    rng = np.random.default_rng(7)
    n = bctx.slots
    # a batch of two ciphertexts pairs with itself; the odd one out takes the
    # single real path (one EvalMod)
    xs = [rng.uniform(-1, 1, n), np.full(n, 0.8), rng.uniform(-1, 1, (2, n)), rng.uniform(-1, 1, n)]
    outs = bctx.bootstrap_many([bctx.encrypt(v).level_to(3) for v in xs])
    for o, v in zip(outs, xs):
        assert o.level == bctx.fresh_level
        assert bits(bctx.decrypt(o), v) >= 27


def test_a_classic_context_runs_either_order(classic):
    x = np.random.default_rng(8).uniform(-1, 1, classic.slots)
    ct = classic.encrypt(x)
    old = ct.level_to(0).bootstrap()
    assert old.level == classic.fresh_level and bits(classic.decrypt(old), x) >= 24
    early = ct.level_to(3).bootstrap(stc_first=True)  # its keys serve the lower levels too
    assert early.level == classic.fresh_level + 3 and bits(classic.decrypt(early), x) >= 28
    with pytest.raises(ValueError, match="level 2.*level >= 3"):
        ct.level_to(2).bootstrap(stc_first=True)


def test_keys_serve_both_orders_and_every_computation_level(bctx, classic):
    """SlotToCoeff rotates at levels 3..1 in the stc_first order, but its keys
    are made up to the output level: a computation between bootstraps (levels
    3..7) rotates by the same steps and finds them. Both orders hold the same
    keys, so an evaluation-only view runs either."""
    boot = bctx._bootstrapper
    assert sorted(boot.key_levels()) == sorted(classic._bootstrapper.key_levels())
    stc_only = {s: lv for s, lv in boot.key_levels().items() if lv < boot.eval_mod_level}
    assert stc_only and set(stc_only.values()) == {bctx.fresh_level}
    x = np.random.default_rng(9).uniform(-1, 1, bctx.slots)
    for step in stc_only:
        got = bctx.decrypt(bctx.encrypt(x).rotate(step))  # at the fresh level
        assert bits(got, np.roll(x, -step)) >= 28
    pub = bctx.public()
    out = pub.bootstrap(pub.encrypt(x).level_to(0), stc_first=False)
    assert out.level == bctx.fresh_level - 3
    assert bits(bctx.decrypt(ht.from_bytes(out.to_bytes(), bctx)), x) >= 24


def _attrs_without_order(monkeypatch):
    real = _codec._context_record

    def old_format(ctx, include_secret_key):
        attrs, secret = real(ctx, include_secret_key)
        d = json.loads(attrs)
        d.pop("boot_order")
        return json.dumps(d), secret

    monkeypatch.setattr(_codec, "_context_record", old_format)


def test_the_order_is_saved_and_older_files_load_as_classic(bctx, classic, monkeypatch):
    back = ht.from_bytes(bctx.public().to_bytes(), allow_insecure=True)
    assert back.bootstrap_contract == bctx.bootstrap_contract and back.fresh_level == bctx.fresh_level
    x = np.linspace(-1, 1, 50)
    out = back.bootstrap(back.encrypt(x).level_to(3))
    assert bits(bctx.decrypt(ht.from_bytes(out.to_bytes(), bctx)), x) >= 28
    # a file written before the order was recorded holds a classic context's fresh level
    _attrs_without_order(monkeypatch)
    old = ht.from_bytes(classic.public().to_bytes(), allow_insecure=True)
    assert old.bootstrap_contract == classic.bootstrap_contract
    with pytest.raises(FormatError, match="fresh level differs"):
        ht.from_bytes(bctx.public().to_bytes(), allow_insecure=True)
