"""Bootstrapping on a small ring against float64 references (precision in bits).

These tests follow the classic order (ModRaise at level 0 first, SlotToCoeff
last: ``bootstrap_order="classic"``); the default order is tested in
tests/test_boot_stc_first.py and tests/test_boot_chain.py."""

import numpy as np
import pytest

import hetensor as ht
from hetensor.boot import BOOT_PRESETS, dft_factors


def bits(got, ref):
    err = float(np.max(np.abs(np.asarray(got) - ref)))
    return np.inf if err == 0 else -np.log2(err)


@pytest.fixture(scope="module")
def bctx():
    return ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=21, bootstrap_order="classic")


def _apply(mats, x):
    n = x.size
    for m in mats:
        y = np.zeros(n, dtype=complex)
        for d, v in m.items():
            y += v * np.roll(x, -d)
        x = y
    return x


@pytest.mark.parametrize("n", [8, 64, 2048])
@pytest.mark.parametrize("parts", [1, 3, 4])
def test_factorised_dft_matches_the_embedding(n, parts):
    """SlotToCoeff factors are the special DFT V (up to the bit reversal that
    CoeffToSlot leaves), and CoeffToSlot inverts them."""
    if parts > n.bit_length() - 1:
        with pytest.raises(ValueError, match="stages"):
            dft_factors(n, parts, inverse=True)
        return
    N = 2 * n
    zeta = np.exp(1j * np.pi / N)
    rng = np.random.default_rng(n)
    w = rng.normal(size=n) + 1j * rng.normal(size=n)
    br = np.array([int(format(i, f"0{n.bit_length() - 1}b")[::-1], 2) for i in range(n)])
    expo = np.array([pow(5, j, 4 * n) for j in range(n)])
    z = np.array([np.sum(w * zeta ** ((expo[j] * np.arange(n)) % (4 * n))) for j in range(n)])
    assert bits(_apply(dft_factors(n, parts, inverse=False), w[br]), z) > 35
    assert bits(_apply(dft_factors(n, parts, inverse=True), z), w[br]) > 40


def test_bootstrap_restores_values_and_levels(bctx):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, bctx.slots)
    ct = bctx.encrypt(x)
    assert ct.level == bctx.fresh_level
    low = (ct * 1.0).level_to(0)
    fresh = low.bootstrap()
    assert fresh.level == bctx.fresh_level
    assert fresh.scale == pytest.approx(bctx.scale_at(fresh.level), rel=1e-9)
    assert bits(bctx.decrypt(fresh), x) >= 20


@pytest.mark.parametrize("value", [1.0, -0.9, 0.0])
def test_bootstrap_of_constant_vectors(bctx, value):
    """All the energy in one coefficient: the case where the sine's curvature bites."""
    x = np.full(bctx.slots, value)
    fresh = bctx.encrypt(x).level_to(0).bootstrap()
    assert bits(bctx.decrypt(fresh), x) >= 20


def test_bootstrap_of_complex_and_partial_tensors(bctx):
    rng = np.random.default_rng(2)
    z = (rng.uniform(-1, 1, (10, 7)) + 1j * rng.uniform(-1, 1, (10, 7))) * 0.7
    fresh = bctx.encrypt(z).level_to(0).bootstrap()
    out = bctx.decrypt(fresh)
    assert out.shape == (10, 7) and np.iscomplexobj(out)
    assert bits(out, z) >= 20


def test_computation_deeper_than_the_chain(bctx):
    """x^(2^6) needs 6 squarings; the chain has 4 computation levels, so it only
    works by bootstrapping in the middle."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.9, 1.0, bctx.slots)
    ct = bctx.encrypt(x)
    ref = x.copy()
    for _ in range(6):
        if ct.level == 0:
            ct = ct.bootstrap()
        ct = ct * ct
        ref = ref * ref
    assert bits(bctx.decrypt(ct), ref) >= 17
    with pytest.raises(ValueError, match="level 0"):
        y = bctx.encrypt(x).level_to(0)
        y * y


def test_bootstrap_errors(bctx):
    plain = ht.Context.from_preset("toy-insecure")
    with pytest.raises(ValueError, match="cannot bootstrap"):
        plain.encrypt(np.ones(4)).bootstrap()
    with pytest.raises(ValueError, match="another context"):
        bctx.bootstrap(plain.encrypt(np.ones(4)))
    with pytest.raises(ValueError, match="does not support bootstrapping"):
        ht.Context.from_preset("toy-insecure", bootstrap=True)
    assert "toy-boot-insecure" in BOOT_PRESETS


def test_encapsulation_round_trip(bctx):
    """Dense -> sparse (mod q_0 p_0) -> dense keeps the message at level 0."""
    from hetensor import _core

    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, bctx.slots)
    ct = bctx.encrypt(x).level_to(0)
    eng = bctx._engine
    back = _core.switch_to_dense(eng, _core.switch_to_sparse(eng, ct._ct))
    assert bits(eng.decrypt(back)[0].real, x) >= 20
    with pytest.raises(ValueError, match="level 0"):
        _core.switch_to_sparse(eng, bctx.encrypt(x)._ct)


def test_bootstrap_precision_report(bctx, capsys):
    """Prints the figure quoted in the docs (random inputs in [-1, 1])."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, bctx.slots)
    got = bctx.decrypt(bctx.encrypt(x).level_to(0).bootstrap())
    b = bits(got, x)
    print(f"bootstrap precision: {b:.1f} bits")
    assert b >= 20


def _toy_boot(params):
    """A toy-boot-insecure context bootstrapping with other circuit parameters."""
    from hetensor.boot import Bootstrapper, choose_cos_degree

    em = params.eval_mod_levels(choose_cos_degree(params))
    bits_ = [45] * 7 + [60] * (em + params.cts_levels)
    ctx = ht.Context.from_params(log_n=12, levels=len(bits_), scale_bits=45, first_prime_bits=60, dnum=3,
                                 level_bits=bits_, allow_insecure=True, seed=22)
    boot = Bootstrapper(ctx, params, "classic")
    boot.generate_keys()
    ctx._attach_bootstrapper(boot)
    assert ctx.fresh_level == boot.output_level
    return ctx


def test_arcsine_removes_the_sines_bend_on_constants():
    """At message ratio 2^8 the sine bends a constant 1.0 by (2 pi / 2^8)^2 / 6 (~15 bits);
    the degree-3 arcsine (the preset's choice) brings it back above 20 bits."""
    from hetensor.boot import BootParams

    bare = BootParams(k_bound=16, double_angles=2, cts_levels=3, stc_levels=3, message_ratio_bits=8,
                      arcsine_degree=0)
    ctx = _toy_boot(bare)
    x = np.ones(ctx.slots)
    err = float(np.max(np.abs(ctx.decrypt(ctx.encrypt(x).bootstrap()) - x)))
    predicted = (2 * np.pi / 2**8) ** 2 / 6  # sin(2 pi u) / (2 pi) = u (1 - (2 pi u)^2 / 6 + ...)
    assert predicted / 1.5 < err < predicted * 1.5
    fixed = BOOT_PRESETS["toy-boot-insecure"]
    assert fixed.arcsine_degree == 3 and fixed.message_ratio_bits == 8


@pytest.mark.parametrize("value", [1.0, -0.9])
def test_preset_bootstrap_keeps_constants(bctx, value):
    x = np.full(bctx.slots, value)
    assert bits(bctx.decrypt(bctx.encrypt(x).bootstrap()), x) >= 20


def test_boot_params_are_validated():
    from hetensor.boot import BootParams

    with pytest.raises(ValueError, match="arcsine_degree"):
        BootParams(arcsine_degree=4)
    with pytest.raises(ValueError, match="message_ratio_bits"):
        BootParams(message_ratio_bits=2)
    with pytest.raises(ValueError, match="cts_headroom_bits"):
        BootParams(cts_headroom_bits=-1)
    ctx = ht.Context.from_preset("toy-boot-insecure", seed=23)
    from hetensor.boot import Bootstrapper, choose_cos_degree

    with pytest.raises(ValueError, match="exceeds log2"):
        Bootstrapper(ctx, BootParams(double_angles=2, message_ratio_bits=20), "classic")
    with pytest.raises(ValueError, match=r"stc_first order needs an arcsine.*order='classic'"):
        Bootstrapper(ctx, BootParams(double_angles=2, message_ratio_bits=8))  # arcsine_degree=0
    with pytest.raises(ValueError, match="bootstrap order must be one of stc_first, classic"):
        Bootstrapper(ctx, BOOT_PRESETS["toy-boot-insecure"], "slot_to_coeff_first")


def test_bootstrap_refuses_values_beyond_its_range(bctx):
    x = np.full(bctx.slots, 0.5)
    big = bctx.encrypt(x) * 32.0  # tracked bound 0.5 * 32 = 16 > 8
    with pytest.raises(ValueError, match="multiply by a constant below 1"):
        big.bootstrap()


def test_cts_headroom_option_keeps_precision():
    from hetensor.boot import BootParams

    p = BootParams(k_bound=16, double_angles=2, cts_levels=3, stc_levels=3, message_ratio_bits=8,
                   arcsine_degree=3, cts_headroom_bits=4)
    ctx = _toy_boot(p)
    x = np.random.default_rng(9).uniform(-1, 1, ctx.slots)
    assert bits(ctx.decrypt(ctx.encrypt(x).bootstrap()), x) >= 20
