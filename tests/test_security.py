"""Security-relevant behaviour (SECURITY_NOTES.md section 8, the items that
apply to what exists now): A1 refusal above the bound, B5 no secret or noise
accessors, C7-C9 typed checks (contexts, scales, size-3 ciphertexts,
headroom), E16 error distribution and randomized encryption."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

# -- the secret never shows -------------------------------------------------------------


def test_secret_key_not_in_repr_or_describe(toy_ctx):
    for text in (repr(toy_ctx), toy_ctx.describe(), str(toy_ctx)):
        assert len(text) < 400
        # no long runs of digits (key material, primes, coefficients)
        assert not re.search(r"\d{16,}", text), text
        assert "secret=" not in text or "ternary" in text  # the distribution only
    ct = toy_ctx.encrypt([1.0, 2.0])
    assert len(repr(ct)) < 200 and not re.search(r"\d{16,}", repr(ct))


FORBIDDEN_WORDS = ("secret", "noise", "coeff", "budget", "imag")


def _public_names(obj):
    return [n for n in dir(obj) if not n.startswith("__")]


def test_no_secret_or_noise_accessors(toy_ctx):
    """B5: no accessor exposes the secret key, raw coefficients or noise."""
    ct = toy_ctx.encrypt([1.0])
    for obj in (toy_ctx, toy_ctx._engine, ct, ct._ct, ht, ht._core):
        for name in _public_names(obj):
            low = name.lower()
            assert not any(word in low for word in FORBIDDEN_WORDS), f"{type(obj).__name__}.{name}"
            assert low not in ("s", "sk", "_sk", "_s") and not low.startswith("sk_") and not low.endswith("_sk"), name


def test_context_with_secret_is_not_picklable(toy_ctx):
    import pickle

    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(toy_ctx)
    # tensors pickle through the binary format, which has no field for a key
    data = pickle.dumps(toy_ctx.encrypt([1.0]))
    assert len(data) < 2 * toy_ctx.encrypt([1.0]).nbytes


# -- A1 ------------------------------------------------------------------------------------


def test_from_params_above_bound_raises_security_error():
    # N = 2^12 allows 109 bits; 60 + 2 * 40 + P is well above.
    with pytest.raises(ht.SecurityError) as info:
        ht.Context.from_params(log_n=12, levels=2)
    assert isinstance(info.value, ValueError)
    assert "109" in str(info.value) and "allow_insecure" in str(info.value)
    ctx = ht.Context.from_params(log_n=12, levels=2, allow_insecure=True, seed=1)
    assert not ctx.params_secure and "INSECURE" in ctx.describe()


def test_security_error_outside_the_table():
    with pytest.raises(ValueError):
        ht.Context.from_params(log_n=18, levels=2)


def test_secure_default_is_secure():
    ctx = ht.Context.from_preset("n14", seed=3)
    assert ctx.params_secure and ctx.log_qp <= 438


# -- C7 / C9: typed checks on low-level objects ------------------------------------------------


def test_scale_mismatch_is_refused(toy_ctx, rng):
    eng = toy_ctx._engine
    a, b = toy_ctx.encrypt(rng.uniform(-1, 1, 4)), toy_ctx.encrypt(rng.uniform(-1, 1, 4))
    t = eng.multiply_no_relin(a._ct, b._ct)  # scale^2, not rescaled
    with pytest.raises(ValueError, match="scale"):
        eng.add(t, a._ct)
    with pytest.raises(ValueError, match="scale"):
        eng.sub(a._ct, eng.relinearize(t))


@pytest.mark.parametrize(
    "op",
    [
        lambda eng, t: eng.rotate(t, 1),
        lambda eng, t: eng.rotate_hoisted(t, [1, 2]),
        lambda eng, t: eng.conjugate(t),
        lambda eng, t: eng.multiply(t, t),
        lambda eng, t: eng.multiply_no_relin(t, t),
    ],
    ids=["rotate", "rotate_hoisted", "conjugate", "multiply", "multiply_no_relin"],
)
def test_size3_ciphertexts_are_rejected(toy_ctx, rng, op):
    """C9 (OpenFHE #575): an unrelinearized product is refused, not mangled."""
    eng = toy_ctx._engine
    a = toy_ctx.encrypt(rng.uniform(-1, 1, 4))
    t = eng.multiply_no_relin(a._ct, a._ct)
    assert t.size == 3
    with pytest.raises(ValueError):
        op(eng, t)


def test_relinearize_with_another_context_is_refused(toy_ctx, other_ctx, rng):
    """C7 KeyMismatch: keys of context B never touch a ciphertext of A."""
    a = toy_ctx.encrypt(rng.uniform(-1, 1, 4))
    t = toy_ctx._engine.multiply_no_relin(a._ct, a._ct)
    with pytest.raises(ValueError, match="context"):
        other_ctx._engine.relinearize(t)
    with pytest.raises(ValueError, match="context"):
        other_ctx._engine.rotate(a._ct, 1)


# -- C8: headroom ------------------------------------------------------------------------------


def _correct_or_refused(ctx, make, ref, scale):
    """`make()` either raises ValueError or decrypts to `ref` (relative 2^-20)."""
    try:
        out = make()
    except ValueError:
        return "refused"
    got = ctx.decrypt(out)
    assert bits(got / scale, ref / scale) >= 20, f"silent garbage: expected about {ref.flat[0]:.6g}, got {got[:3]}"
    return "correct"


def test_product_of_large_values_is_correct_or_refused(toy_ctx):
    """4000 * 4000 at scale 2^40 with a 60-bit q_0 (SEAL #566): the product is
    1.6e7, so |m| * scale is about 2^64 > q_0. At its own level it is fine;
    any route down to level 0 must raise ValueError, not return garbage."""
    assert int(toy_ctx._engine.q[0]).bit_length() == 60
    slots = toy_ctx.slots
    x = np.full(slots, 4000.0)
    y = toy_ctx.encrypt(x) * toy_ctx.encrypt(x)
    ref = x * x
    assert bits(toy_ctx.decrypt(y) / 1.6e7, ref / 1.6e7) >= 20
    low = toy_ctx.encrypt(np.ones(slots)).level_to(0)
    ones = np.ones(slots)

    def plain_chain():
        r = y
        while r.level > 0:
            r = r * ones
        return r

    routes = {
        "level_to(0)": lambda: y.level_to(0),
        "add a level-0 tensor (automatic alignment)": lambda: y + low,
        "plaintext products down to level 0": plain_chain,
    }
    for name, make in routes.items():
        _correct_or_refused(toy_ctx, make, ref, 1.6e7)


def test_encrypt_limit_survives_to_level_zero(toy_ctx):
    """Values just under ctx.max_value are accepted and survive down to level 0."""
    m = toy_ctx.max_value
    x = np.full(toy_ctx.slots, 0.99 * m)
    x[::2] *= -1
    ct = toy_ctx.encrypt(x, symmetric=True).level_to(0)
    assert bits(toy_ctx.decrypt(ct) / m, x / m) >= 25


# -- E16: noise distribution -------------------------------------------------------------


@pytest.mark.parametrize("sigma", [3.2, 8.0])
def test_symmetric_encryption_noise_matches_sigma(sigma):
    """Symmetric encryption of zeros decrypts to e(zeta)/scale: each real slot
    has standard deviation sqrt(N/2) * sigma / scale (canonical embedding of
    N independent Gaussian coefficients). Checks that sigma is the one used."""
    ctx = ht.Context.from_params(log_n=12, levels=1, sigma=sigma, allow_insecure=True, seed=11)
    n = ctx.ring_degree
    expected = math.sqrt(n / 2) * sigma / ctx.scale
    samples = np.concatenate([ctx.decrypt(ctx.encrypt(np.zeros(ctx.slots), symmetric=True)) for _ in range(4)])
    std = float(samples.std())
    assert 0.9 < std / expected < 1.1, f"noise std {std:.3e}, expected {expected:.3e} for sigma={sigma}"
    assert abs(float(samples.mean())) < 5 * expected / math.sqrt(samples.size)
    # Gaussian tails: nothing beyond 7 standard deviations in 8192 samples
    assert float(np.max(np.abs(samples))) < 7 * expected
    assert bits(samples, np.zeros_like(samples)) >= -math.log2(7 * expected)


def test_public_key_noise_is_bounded(toy_ctx):
    """Public-key encryption noise is at most that of the textbook scheme
    (e_pk*v + e0 + e1*s: about sqrt(4N/3) sigma per coefficient; encrypting in
    QP and dividing by P leaves less) and larger than the symmetric noise
    (sigma per coefficient), as Context.encrypt documents."""
    n, sigma = toy_ctx.ring_degree, 3.2
    z = np.zeros(toy_ctx.slots)
    sym = toy_ctx.decrypt(toy_ctx.encrypt(z, symmetric=True)).std()
    pub = toy_ctx.decrypt(toy_ctx.encrypt(z)).std()
    textbook = math.sqrt(n / 2) * math.sqrt(4 * n / 3) * sigma / toy_ctx.scale
    assert 0 < pub < 2 * textbook, (pub, textbook)
    assert pub > sym, "symmetric encryption should carry the smaller noise"


def test_imaginary_noise_has_the_same_size(toy_ctx):
    z = np.zeros(toy_ctx.slots, dtype=np.complex128)
    d = toy_ctx.decrypt(toy_ctx.encrypt(z, symmetric=True))
    assert 0.8 < d.real.std() / d.imag.std() < 1.25


@pytest.mark.parametrize("symmetric", [False, True])
def test_encryption_is_randomized(toy_ctx, rng, symmetric):
    x = rng.uniform(-1, 1, 64)
    d1 = toy_ctx.decrypt(toy_ctx.encrypt(x, symmetric=symmetric))
    d2 = toy_ctx.decrypt(toy_ctx.encrypt(x, symmetric=symmetric))
    assert not np.array_equal(d1, d2), "two encryptions of the same data carry the same noise"
    assert bits(d1, x) >= 22 and bits(d2, x) >= 22
    # the noise of the two is not even correlated
    e1, e2 = d1 - x, d2 - x
    corr = float(np.corrcoef(e1, e2)[0, 1])
    assert abs(corr) < 0.5


def test_seed_makes_contexts_reproducible_and_different_seeds_differ(rng):
    x = rng.uniform(-1, 1, 16)
    a = ht.Context.from_preset("toy-insecure", seed=77)
    b = ht.Context.from_preset("toy-insecure", seed=77)
    c = ht.Context.from_preset("toy-insecure", seed=78)
    da, db, dc = (ctx.decrypt(ctx.encrypt(x)) for ctx in (a, b, c))
    np.testing.assert_array_equal(da, db)
    assert not np.array_equal(da, dc)


def test_unseeded_contexts_differ(rng):
    x = rng.uniform(-1, 1, 16)
    a = ht.Context.from_params(log_n=11, levels=1, allow_insecure=True)
    b = ht.Context.from_params(log_n=11, levels=1, allow_insecure=True)
    assert not np.array_equal(a.decrypt(a.encrypt(x)), b.decrypt(b.encrypt(x)))


def test_sparse_secret_context_works():
    ctx = ht.Context.from_params(log_n=12, levels=2, hamming_weight=32, allow_insecure=True, seed=2)
    x = np.linspace(-1, 1, 100)
    cx = ctx.encrypt(x)
    assert bits(ctx.decrypt(cx * cx), x * x) >= 20
