"""hetensor.nn in plain mode: the module system, from_torch, and the polynomial
layers against their exact hetensor.torch twins (bounded by the approximation error)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor.nn as hnn  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from hetensor.nn import fits  # noqa: E402


def small_classifier(seed=0, **kw):
    torch.manual_seed(seed)
    m = htt.TransformerClassifier(6, 8, 2, 16, 1, 3, 4, lora_rank=2, **kw).double()
    with torch.no_grad():
        for layer in m.layers:
            for p in (layer.attn.q, layer.attn.k, layer.attn.v):
                p.lora_B.normal_(0.0, 0.2)
    return m


def test_module_system_like_torch():
    m = hnn.from_torch(small_classifier())
    names = [n for n, _ in m.named_modules()]
    assert names[:3] == ["", "embed", "layers"] and "layers.0.attn.q.base" in names
    sd = m.state_dict()
    tsd = small_classifier().state_dict()
    assert set(tsd) <= set(sd)  # the torch names carry over
    for k, v in tsd.items():
        assert np.array_equal(sd[k], v.numpy())
    assert len(list(m.lora_parameters())) == 6
    assert "GaussianKernelAttention(d_model=8, n_heads=2, lora_rank=2" in repr(m)
    assert m.train().training and not m.eval().training and not m.head.training
    m2 = hnn.from_torch(small_classifier(seed=1))
    m2.load_state_dict(sd)
    assert np.array_equal(m2.embed.weight, m.embed.weight)
    with pytest.raises(KeyError, match="unexpected"):
        m2.load_state_dict({**sd, "nope": np.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        m2.load_state_dict({**sd, "embed.weight": np.zeros((2, 2))})


def test_from_torch_round_trip_exact_layers():
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3)).double()
    x = torch.randn(20, 5, dtype=torch.float64)
    m = hnn.from_torch(seq, calibration=x)
    assert isinstance(m, hnn.Sequential) and len(m) == 3
    p, steps = m[1].inv_sqrt_steps()
    got, ref = m(x.numpy()), seq(x).detach().numpy()
    # the only approximation is LayerNorm's inverse square root: relative 2^-14
    lnout = seq[1](seq[0](x)).detach().numpy() - seq[1].bias.detach().numpy()
    bound = 2.0 ** -fits.TARGET_BITS * np.abs(lnout) @ np.abs(seq[2].weight.detach().numpy().T)
    assert np.all(np.abs(got - ref) <= 1.01 * bound + 1e-12)


def test_unsupported_modules_raise_with_their_name():
    seq = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Sigmoid())
    with pytest.raises(TypeError, match=r"Sigmoid at '1'"):
        hnn.from_torch(seq)
    with pytest.raises(TypeError, match="approximate"):
        hnn.from_torch(torch.nn.GELU(approximate="tanh"))


@pytest.mark.parametrize("kind", ["relu", "gelu", "tanh"])
def test_activation_plain_within_its_polynomial_error(kind):
    act = {"relu": torch.nn.ReLU(), "gelu": torch.nn.GELU(), "tanh": torch.nn.Tanh()}[kind]
    x = torch.linspace(-4, 3, 301, dtype=torch.float64).reshape(-1, 1)
    m = hnn.from_torch(torch.nn.Sequential(act), calibration=x, max_depth=7)
    p = m[0].polynomial()
    assert p.a < -4 and p.b > 3
    err = np.max(np.abs(m(x.numpy()) - act(x).numpy()))
    assert err <= p.max_error * 1.0001 + 1e-12
    assert err < {"relu": 0.02, "gelu": 1e-3, "tanh": 1e-3}[kind]


def test_classifier_plain_vs_torch_exact():
    m = small_classifier(activation="gelu")
    x = torch.randn(16, 4, 6, dtype=torch.float64)
    model = hnn.from_torch(m, calibration=x)
    ref = m(x).detach().numpy()
    got = model(x.numpy())
    assert got.shape == (16, 3)
    # the error budget: every fit aims at 2^-14 relative; through the layers it stays well below 2^-8
    assert np.max(np.abs(got - ref)) < 2.0 ** -8 * np.max(np.abs(ref))


def test_padding_mask_and_batching():
    m = small_classifier(seed=3)
    x = torch.randn(6, 4, 6, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 1]])
    # padded tokens go through the polynomials before the mask zeroes their weight:
    # they must stay in the calibrated range (here: other values of the same size)
    x2 = x.numpy().copy()
    x2[1, 2:] = -x2[1, 2:]
    model = hnn.from_torch(m, calibration=np.concatenate([x.numpy(), x2]), mask=np.concatenate([mask, mask]))
    ref = m(x, mask).detach().numpy()
    got = model(x.numpy(), mask=mask.numpy())
    assert np.max(np.abs(got - ref)) < 2.0 ** -8 * np.max(np.abs(ref))
    # a sequence's output does not depend on the others in the batch, nor on its padded tokens
    one = model(x.numpy()[1:2], mask=mask.numpy()[1:2])
    assert np.allclose(one, got[1:2], atol=1e-12)
    assert np.allclose(model(x2, mask=mask.numpy())[1], got[1], atol=1e-12)


def test_uncalibrated_model_says_so():
    model = hnn.from_torch(small_classifier())
    with pytest.raises(ValueError, match="not calibrated"):
        model(np.zeros((1, 4, 6)))


def test_plain_mode_runs_large_batches_in_chunks(monkeypatch):
    """Plain mode splits a large batch into chunks of sequences (the attention
    matrices grow with the square of the batch's tokens): same result, with a mask."""
    from hetensor.nn import run as nn_run

    m = small_classifier(seed=5)
    x = torch.randn(7, 4, 6, dtype=torch.float64)
    mask = torch.ones(7, 4)
    mask[2, 3:] = 0
    mask[5, 1:] = 0
    model = hnn.from_torch(m, calibration=x, mask=mask)
    whole = model(x.numpy(), mask=mask.numpy())
    monkeypatch.setattr(nn_run, "PLAIN_CHUNK", 3)
    chunked = model(x.numpy(), mask=mask.numpy())
    flat = model(x.numpy().reshape(28, 6), seq_len=4, mask=mask.numpy())
    assert chunked.shape == whole.shape == flat.shape == (7, 3)
    err = max(np.max(np.abs(chunked - whole)), np.max(np.abs(flat - whole)))
    assert err <= 2.0 ** -40 * np.max(np.abs(whole))
    ref = m(x, mask).detach().numpy()
    assert np.max(np.abs(chunked - ref)) < 2.0 ** -8 * np.max(np.abs(ref))


def test_softmax_attention_plain_on_scores_of_wide_spread():
    # rows whose largest scores differ by tens (no maximum is subtracted): softmax(z / 2^K),
    # then K squarings each renormalised, keeps every reciprocal on [1/seq_len, 1]
    torch.manual_seed(6)
    att = htt.SoftmaxAttention(8, 2).double()
    x = torch.randn(3, 8, 8, dtype=torch.float64) * 4.0
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1, 1] + [0] * 6])
    model = hnn.from_torch(att, calibration=x.numpy(), mask=mask.numpy())
    ref = att(x, mask).detach().numpy()
    got = model(x.numpy(), mask=mask.numpy()).reshape(ref.shape)
    lo, hi = model.ranges["scores"]
    assert hi - lo > 30 and model.exp_steps()[1] >= 4  # a spread that one reciprocal could not cover
    assert np.max(np.abs(got - ref)) < 2.0 ** -10 * np.max(np.abs(ref))


def test_softmax_exp_fit_is_narrow_and_accurate():
    for a, b, depth in [(-40.0, 20.0, 8), (-3.0, 3.0, 3), (-0.5, 0.25, 8)]:
        p, k = fits.softmax_exp(a, b, depth)
        assert p.depth <= depth and (b - a) / 2.0 ** k <= fits.SOFTMAX_SPREAD
        x = np.linspace(a, b, 1001)
        ref = np.exp((x - b) / 2.0 ** k)
        assert np.max(np.abs(p(x) - ref)) <= 2.0 ** -(fits.TARGET_BITS + k) * ref.min()
    with pytest.raises(ValueError, match="a < b"):
        fits.softmax_exp(1.0, 1.0, 8)


def test_softmax_attention_sequence_of_padding_only_gets_zero_weights():
    # its row sums are 0: they are replaced by 1 before the reciprocal (no division by 0,
    # no value outside the polynomial's interval), so its heads output 0 and only o's bias is left
    torch.manual_seed(8)
    att = htt.SoftmaxAttention(4, 2).double()
    x = np.random.default_rng(8).normal(0, 1, (2, 3, 4))
    model = hnn.from_torch(att, calibration=x, mask=np.array([[1, 1, 1], [1, 1, 0]]))
    got = model(x, mask=np.array([[1, 1, 1], [0, 0, 0]])).reshape(2, 3, 4)
    bias = att.o.bias.detach().numpy()
    assert np.max(np.abs(got[1] - bias)) <= 2.0 ** -40 * np.max(np.abs(bias))
    ref = att(torch.from_numpy(x[:1])).detach().numpy()
    assert np.max(np.abs(got[0] - ref[0])) < 2.0 ** -10 * np.max(np.abs(ref))


@pytest.mark.parametrize("kind", ["gk", "softmax"])
def test_per_sequence_scores_equal_the_dense_masked_ones(kind):
    """Inference scores each token against its own sequence ((tokens, T * heads) scores);
    training's dense form (tokens x tokens, block-diagonal mask) is the same function
    with the same polynomials: they agree to float64 rounding, padding included, and
    both follow the exact twin within the approximation error."""
    torch.manual_seed(9)
    cls = htt.GaussianKernelAttention if kind == "gk" else htt.SoftmaxAttention
    att = cls(8, 2, lora_rank=1).double()
    x = np.random.default_rng(9).normal(0, 1, (5, 4, 8))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    model = hnn.from_torch(att, calibration=x, mask=mask)
    assert model.per_sequence
    packed = model(x, mask=mask)
    model.per_sequence = False
    dense = model(x, mask=mask)
    assert np.max(np.abs(packed - dense)) <= 2.0 ** -40 * np.max(np.abs(dense))
    ref = att(torch.from_numpy(x), torch.from_numpy(mask)).detach().numpy()
    assert np.max(np.abs(packed - ref)) < 2.0 ** -10 * np.max(np.abs(ref))


@pytest.mark.parametrize("kind", ["gk", "softmax"])
def test_calibration_pass_returns_the_layer_output_once(kind):
    """Calibration of a batch of several sequences runs both attention forms (to record
    both forms' sites); the layer's output (and so every range recorded after it) is the
    exact twin's, not the sum of the two forms' outputs."""
    from hetensor.nn.run import Run
    from hetensor.nn.tensors import PlainArray

    torch.manual_seed(10)
    cls = htt.GaussianKernelAttention if kind == "gk" else htt.SoftmaxAttention
    att = cls(4, 2).double()
    x = np.random.default_rng(10).normal(0, 1, (3, 4, 4))
    model = hnn.from_torch(att, calibration=x)
    run = Run(model, "plain", batch=3, seq_len=4, calibrating=True)
    got = run.call(model, PlainArray(x.reshape(12, 4))).numpy()
    ref = att(torch.from_numpy(x)).detach().numpy().reshape(12, 4)
    assert np.max(np.abs(got - ref)) <= 2.0 ** -40 * np.max(np.abs(ref))
    assert {"values_p", "values"} <= set(model.ranges)  # both forms' sites were recorded


def test_per_sequence_attention_uses_small_score_tensors(monkeypatch):
    """The per-sequence scores have T * heads columns whatever the batch (no tokens x tokens tensor)."""
    from hetensor.nn.tensors import PlainArray

    torch.manual_seed(10)
    att = htt.GaussianKernelAttention(8, 2).double()
    x = np.random.default_rng(10).normal(0, 1, (300, 4, 8))
    model = hnn.from_torch(att, calibration=x[:8])
    widths = []
    orig = PlainArray.__matmul__

    def spy(self, other):
        out = orig(self, other)
        widths.append(out.shape)
        return out

    monkeypatch.setattr(PlainArray, "__matmul__", spy)
    got = model(x[:60])  # 60 sequences: one pass (not chunked)
    assert widths and max(s[1] for s in widths) <= 8  # (240, T * heads = 8) scores, (240, 8) features
    ref = att(torch.from_numpy(x[:60])).detach().numpy()
    assert np.max(np.abs(got - ref)) < 2.0 ** -10 * np.max(np.abs(ref))
