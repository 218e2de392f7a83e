"""Parameters: presets, the HE-standard security bound on log2(QP), and
validation of parameter literals (checklist A1)."""

from __future__ import annotations

import math

import pytest

import hetensor as ht
from hetensor import _core

# HomomorphicEncryption.org 128-bit classical, ternary secret (2^10..2^15);
# OpenFHE's table for 2^16 and 2^17 (SECURITY_NOTES.md section 1.1).
HE_STANDARD_128 = {10: 27, 11: 54, 12: 109, 13: 218, 14: 438, 15: 881, 16: 1747, 17: 3523}
EXPECTED_PRESETS = {"toy-insecure", "n13-insecure", "n14", "n15", "n16", "n16-boot"}
# name -> (log_n, levels, approx log2 Q) from the issue (OpenFHE/desilofhe shapes)
SECURE_SHAPES = {"n14": (14, 7, 340), "n15": (15, 15, 660), "n16": (16, 24, 1020), "n16-boot": (16, 25, 1380)}
SCALE_BITS = {"n16-boot": 45}  # bootstrapping chain; the others use 2^40


def modulus_bits(ctx) -> int:
    """Sum of the bit lengths of every prime of Q and P (what the bound counts)."""
    return sum(int(q).bit_length() for q in ctx._engine.q) + sum(int(p).bit_length() for p in ctx._engine.p)


def exact_bound_params(log_n: int) -> dict:
    """from_params arguments whose primes add up to exactly the 128-bit bound.

    first_prime_bits + levels * scale_bits + alpha * special_prime_bits == bound,
    with few primes so that key generation stays cheap.
    """
    bound = HE_STANDARD_128[log_n]
    for scale_bits in (60, 50, 40, 35, 32):
        for levels in range(bound // scale_bits, -1, -1):
            rest = bound - levels * scale_bits
            for alpha in (1, 2, 3, 4):
                for first in range(60, scale_bits - 1, -1):  # leaves room for one more bit
                    sp, r = divmod(rest - first, alpha)
                    if r == 0 and 32 <= sp <= 61:
                        return dict(
                            log_n=log_n, levels=levels, scale_bits=scale_bits, first_prime_bits=first,
                            special_primes=alpha, special_prime_bits=sp, dnum=1,
                        )
    raise AssertionError(f"no exact-bound parameter set for log_n={log_n}")


def one_bit_more(params: dict) -> dict:
    p = dict(params)
    assert p["first_prime_bits"] < 61
    p["first_prime_bits"] += 1
    return p


def literal_bits(p: dict) -> int:
    return p["first_prime_bits"] + p["levels"] * p["scale_bits"] + p["special_primes"] * p["special_prime_bits"]


# -- presets ------------------------------------------------------------------------------


def test_presets_listed():
    names = ht.presets()
    assert isinstance(names, list) and all(isinstance(n, str) for n in names)
    assert EXPECTED_PRESETS <= set(names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", sorted(EXPECTED_PRESETS))
def test_preset_literals_are_within_the_bound_unless_named_insecure(name):
    lit = _core.preset_literal(name)
    assert lit.name == name
    bound = HE_STANDARD_128[lit.log_n]
    assert _core.he_standard_max_log_qp(lit.log_n) == bound
    if name.endswith("-insecure"):
        assert lit.allow_insecure
    else:
        assert not lit.allow_insecure, "a secure preset must not opt out of the security check"
        log_n, levels, _ = SECURE_SHAPES[name]
        assert (lit.log_n, lit.levels, lit.scale_bits) == (log_n, levels, SCALE_BITS.get(name, 40))


@pytest.mark.parametrize("name", ["n14", "n15"])
def test_secure_presets_pass_the_bound(name):
    ctx = ht.Context.from_preset(name, seed=1)
    log_n, levels, log_q = SECURE_SHAPES[name]
    bound = HE_STANDARD_128[log_n]
    assert ctx.params_secure
    assert ctx.ring_degree == 2**log_n and ctx.slots == 2 ** (log_n - 1)
    assert ctx.max_level == levels
    assert ctx.scale == pytest.approx(2.0**40, rel=2.0**-10)
    assert abs(ctx._engine.log_q - log_q) <= 2, f"log2(Q) = {ctx._engine.log_q}, expected about {log_q}"
    assert ctx.log_qp <= bound and modulus_bits(ctx) <= bound
    assert ctx.log_qp > ctx._engine.log_q  # P is counted
    # secure parameters; the context itself is not, since its keys come from a seed
    assert ctx._engine.params_problem == "" and "seed" in ctx.security_problem


def test_bootstrapping_preset_fits_the_bound_with_special_primes():
    # n16-boot's chain is 1 bit under the bound: a prime that came out one bit
    # larger would make it insecure, so check the primes themselves.
    ctx = ht.Context.from_preset("n16-boot", seed=1)
    assert ctx.params_secure and ctx.max_level == 25
    assert ctx.log_qp <= HE_STANDARD_128[16] and modulus_bits(ctx) <= HE_STANDARD_128[16]
    assert abs(ctx._engine.log_q - 1380) <= 2
    assert [int(q).bit_length() for q in ctx._engine.q][1:] == [45] * 12 + [60] * 13


def test_insecure_presets_are_insecure_and_say_so(toy_ctx):
    assert not toy_ctx.params_secure
    assert "INSECURE" in toy_ctx.describe()
    assert toy_ctx.log_qp > HE_STANDARD_128[12]
    assert toy_ctx.name == "toy-insecure"
    ctx13 = ht.Context.from_preset("n13-insecure", seed=2)
    assert not ctx13.params_secure
    assert (ctx13.ring_degree, ctx13.max_level, ctx13.dnum) == (2**13, 10, 3)


def test_toy_preset_shape(toy_ctx):
    assert toy_ctx.ring_degree == 4096
    assert toy_ctx.slots == 2048
    assert toy_ctx.max_level == 6
    assert toy_ctx.dnum == 2
    assert toy_ctx.scale == pytest.approx(2.0**40, rel=2.0**-10)  # a little below 2^40, see params.cpp
    assert len(toy_ctx._engine.q) == toy_ctx.max_level + 1
    assert math.isclose(toy_ctx.log_qp, sum(math.log2(x) for x in toy_ctx._engine.q + toy_ctx._engine.p))


def test_scale_at_every_level(toy_ctx):
    for level in range(toy_ctx.max_level + 1):
        s = toy_ctx.scale_at(level)
        assert abs(math.log2(s) - 40) < 2**-10, f"scale at level {level} drifted to 2^{math.log2(s)}"
    assert toy_ctx.scale_at(toy_ctx.max_level) == toy_ctx.scale
    for bad in (-1, toy_ctx.max_level + 1):
        with pytest.raises(ValueError):
            toy_ctx.scale_at(bad)


def test_chain_primes_are_distinct_ntt_primes(toy_ctx):
    n = toy_ctx.ring_degree
    primes = list(toy_ctx._engine.q) + list(toy_ctx._engine.p)
    assert len(set(primes)) == len(primes)
    for q in primes:
        assert _core.is_prime(q) and q % (2 * n) == 1 and q < 2**61
    assert int(toy_ctx._engine.q[0]).bit_length() == 60
    for q in toy_ctx._engine.q[1:]:
        assert int(q).bit_length() in (40, 41)


# -- the HE-standard bound (A1) -------------------------------------------------------


@pytest.mark.parametrize("log_n", sorted(HE_STANDARD_128))
def test_he_standard_table(log_n):
    assert _core.he_standard_max_log_qp(log_n) == HE_STANDARD_128[log_n]


@pytest.mark.parametrize("log_n", [9, 18])
def test_he_standard_table_outside_range(log_n):
    assert _core.he_standard_max_log_qp(log_n) < 0


@pytest.mark.parametrize("log_n", [12, 13, 14])
def test_exact_bound_accepted_and_one_bit_more_rejected(log_n):
    bound = HE_STANDARD_128[log_n]
    params = exact_bound_params(log_n)
    assert literal_bits(params) == bound
    ctx = ht.Context.from_params(**params, seed=3)
    assert modulus_bits(ctx) == bound, "the primes do not have the requested bit lengths"
    assert ctx.params_secure
    above = one_bit_more(params)
    assert literal_bits(above) == bound + 1
    with pytest.raises(ht.SecurityError) as info:
        ht.Context.from_params(**above)
    msg = str(info.value)
    assert str(bound) in msg and "allow_insecure" in msg
    assert isinstance(info.value, ValueError)
    ctx = ht.Context.from_params(**above, allow_insecure=True, seed=3)
    assert modulus_bits(ctx) == bound + 1
    assert not ctx.params_secure
    assert "INSECURE" in ctx.describe()


@pytest.mark.parametrize("log_n", [15, 16, 17])
def test_exact_bound_rejected_one_bit_above_large_n(log_n):
    """Rejection happens before key generation, so it is cheap at any N."""
    above = one_bit_more(exact_bound_params(log_n))
    assert literal_bits(above) == HE_STANDARD_128[log_n] + 1
    with pytest.raises(ht.SecurityError):
        ht.Context.from_params(**above)


@pytest.mark.slow
@pytest.mark.parametrize("log_n", [15, 16, 17])
def test_exact_bound_accepted_large_n(log_n):
    params = exact_bound_params(log_n)
    ctx = ht.Context.from_params(**params, seed=3)
    assert modulus_bits(ctx) == HE_STANDARD_128[log_n]
    assert ctx.params_secure


@pytest.mark.parametrize("log_n", [10, 11])
def test_smallest_rings_cannot_be_secure(log_n):
    # Two primes of at least 32 bits already exceed 27 / 54 bits.
    params = dict(log_n=log_n, levels=0, scale_bits=33, first_prime_bits=33, special_primes=1, special_prime_bits=33)
    with pytest.raises(ht.SecurityError):
        ht.Context.from_params(**params)
    ctx = ht.Context.from_params(**params, allow_insecure=True, seed=1)
    assert not ctx.params_secure


def test_smallest_documented_prime_sizes_work():
    """The literal accepts scale_bits, first_prime_bits and special_prime_bits
    down to 32; such a parameter set must build a working context."""
    ctx = ht.Context.from_params(log_n=11, levels=1, scale_bits=32, first_prime_bits=32,
                                 special_primes=1, special_prime_bits=32, allow_insecure=True, seed=1)
    assert ctx.scale == pytest.approx(2.0**32, rel=2.0**-10)
    assert all(int(q).bit_length() == 32 for q in list(ctx._engine.q) + list(ctx._engine.p))
    x = [0.01, -0.02, 0.03]
    got = ctx.decrypt(ctx.encrypt(x, symmetric=True))
    assert max(abs(a - b) for a, b in zip(got, x)) < 2**-18


def test_bound_counts_special_primes():
    """Q alone fits the 218-bit bound of N = 2^13; Q*P does not (A1: QP, not Q)."""
    base = dict(log_n=13, levels=3, scale_bits=40, first_prime_bits=60, special_primes=1, dnum=1)
    assert 60 + 3 * 40 <= 218
    with pytest.raises(ht.SecurityError):
        ht.Context.from_params(**base, special_prime_bits=60)  # 240 bits
    ctx = ht.Context.from_params(**base, special_prime_bits=38, seed=5)  # exactly 218
    assert ctx.params_secure and modulus_bits(ctx) == 218


@pytest.mark.parametrize(
    "levels, dnum", [(levels, dnum) for levels in (1, 2, 3) for dnum in (1, 2, 3) if dnum <= levels + 1]
)
def test_acceptance_matches_the_actual_modulus_size(levels, dnum):
    """Varying dnum changes P (and QP); acceptance follows the primes actually
    chosen, special primes included."""
    params = dict(log_n=13, levels=levels, dnum=dnum)
    probe = ht.Context.from_params(**params, allow_insecure=True, seed=6)
    total = modulus_bits(probe)
    assert abs(probe.log_qp - total) < len(probe._engine.q) + len(probe._engine.p)
    secure = total <= HE_STANDARD_128[13]
    assert probe.params_secure == secure
    if secure:
        assert ht.Context.from_params(**params, seed=6).params_secure
    else:
        with pytest.raises(ht.SecurityError):
            ht.Context.from_params(**params)


# -- literal validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "override, field",
    [
        (dict(log_n=9), "log_n"),
        (dict(log_n=18), "log_n"),
        (dict(levels=-1), "levels"),
        (dict(levels=61), "levels"),
        (dict(scale_bits=20), "scale_bits"),
        (dict(scale_bits=61, first_prime_bits=61), "scale_bits"),
        (dict(first_prime_bits=39), "first_prime_bits"),
        (dict(first_prime_bits=62), "first_prime_bits"),
        (dict(special_prime_bits=31), "special_prime_bits"),
        (dict(special_prime_bits=62), "special_prime_bits"),
        (dict(dnum=0), "dnum"),
        (dict(dnum=4), "dnum"),  # levels + 1 = 3
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=-3.2), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(hamming_weight=-1), "hamming_weight"),
        (dict(hamming_weight=2**11 + 1), "hamming_weight"),
        (dict(special_primes=-1), "special_primes"),
        (dict(special_primes=61), "special_primes"),
    ],
)
def test_invalid_literal_raises_value_error_naming_the_field(override, field):
    params = dict(log_n=11, levels=2, allow_insecure=True)
    params.update(override)
    with pytest.raises(ValueError) as info:
        ht.Context.from_params(**params)
    assert not isinstance(info.value, ht.SecurityError), "an invalid literal is not a security failure"
    assert field in str(info.value), f"the message should name '{field}': {info.value}"


def test_context_facts_from_params():
    ctx = ht.Context.from_params(log_n=11, levels=3, scale_bits=36, first_prime_bits=50, dnum=2,
                                 allow_insecure=True, seed=9)
    assert ctx.ring_degree == 2048 and ctx.slots == 1024
    assert ctx.max_level == 3 and ctx.dnum == 2
    assert ctx.scale == pytest.approx(2.0**36, rel=2.0**-10)
    assert int(ctx._engine.q[0]).bit_length() == 50
    assert ctx.key_bytes() > 0
    assert ctx.max_value == pytest.approx(ctx._engine.q[0] / 4 / ctx.scale)


def test_hamming_weight_secret():
    ctx = ht.Context.from_params(log_n=12, levels=2, hamming_weight=64, allow_insecure=True, seed=10)
    assert "h=64" in ctx.describe()
    x = [0.25, -0.5, 0.75]
    assert -math.log2(max(abs(a - b) for a, b in zip(ctx.decrypt(ctx.encrypt(x)), x))) >= 25


def test_rotation_keys_are_reported_and_sized(small_ctx):
    slots = small_ctx.slots
    assert small_ctx.rotation_steps == []
    before = small_ctx.key_bytes()
    small_ctx.generate_rotation_keys([1, -1, slots + 3, 0])
    # normalised to [1, slots): -1 -> slots - 1, slots + 3 -> 3; 0 needs no key
    assert sorted(small_ctx.rotation_steps) == sorted({1, slots - 1, 3})
    after = small_ctx.key_bytes()
    assert after > before
    per_key = (after - before) / 3
    small_ctx.generate_rotation_keys([1, 3])  # existing keys are kept, not duplicated
    assert small_ctx.key_bytes() == after
    small_ctx.generate_conjugation_key()
    assert small_ctx.key_bytes() == pytest.approx(after + per_key)
    assert sorted(small_ctx.rotation_steps) == sorted({1, slots - 1, 3})
