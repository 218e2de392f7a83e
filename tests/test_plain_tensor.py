"""ctx.encode / PlainTensor: encode once, reuse in products and sums."""

import numpy as np
import pytest

import hetensor as ht


def bits(got, ref):
    err = float(np.max(np.abs(np.asarray(got) - ref)))
    return np.inf if err == 0 else -np.log2(err)


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset("toy-insecure", seed=11)


def test_encoded_multiplier_and_addend(ctx):
    rng = np.random.default_rng(1)
    x, w = rng.uniform(-1, 1, (4, 9)), rng.uniform(-1, 1, (4, 9))
    X = ctx.encrypt(x)
    W = ctx.encode(w)
    A = ctx.encode(w, purpose="add")
    assert bits(ctx.decrypt(X * W), x * w) >= 24
    assert (X * W).level == X.level - 1
    assert bits(ctx.decrypt(X + A), x + w) >= 24
    assert bits(ctx.decrypt(A - X), w - x) >= 24
    # one encoding serves many ciphertexts
    for _ in range(3):
        y = rng.uniform(-1, 1, (4, 9))
        assert bits(ctx.decrypt(ctx.encrypt(y) * W), y * w) >= 24


def test_lower_level_plaintext_brings_the_tensor_down(ctx):
    rng = np.random.default_rng(2)
    x, w = rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50)
    W3 = ctx.encode(w, level=3)
    out = ctx.encrypt(x) * W3
    assert out.level == 2
    assert bits(ctx.decrypt(out), x * w) >= 22


def test_plain_tensor_errors(ctx):
    x = np.ones(8)
    X = ctx.encrypt(x)
    with pytest.raises(ValueError, match="purpose"):
        X * ctx.encode(x, purpose="add")
    with pytest.raises(ValueError, match="level"):
        (X * X) * ctx.encode(x, purpose="multiply")  # tensor at level 5, plaintext for level 6
    assert bits(ctx.decrypt((X * X) * ctx.encode(x)), x) >= 24  # the default purpose adapts (issue 16)
    with pytest.raises(ValueError, match="shapes"):
        X * ctx.encode(np.ones(9))
    other = ht.Context.from_preset("toy-insecure")
    with pytest.raises(ValueError, match="another context"):
        X * other.encode(x)
    with pytest.raises(ValueError):
        ctx.encode(x, purpose="divide")
    with pytest.raises(ValueError, match="level"):
        ctx.encode(x, level=0, purpose="multiply")
