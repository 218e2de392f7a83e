"""hetensor.nn encrypted (toy bootstrapping preset) against its own plain mode.

Plain mode evaluates the same polynomials in float64, so the difference is the
CKKS noise of the products and bootstraps: each layer must agree to >= 12 bits
(relative to the output's largest value). The polynomials are fitted with
max_depth = usable_levels - 1 = 3 levels, so layers bootstrap often.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor as ht  # noqa: E402
import hetensor.nn as hnn  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from conftest import rel_bits as bits  # noqa: E402

PRESET = "toy-boot-insecure"


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset(PRESET, bootstrap=True, seed=11)


def run_both(tmodel, x, ctx, mask=None, **kw):
    model = hnn.from_torch(tmodel, calibration=x, mask=mask, max_depth=ctx.usable_levels - 1)
    plain = model(x, mask=mask, **kw)
    rep = model.compile(ctx, x, mask=mask, **kw)  # one encrypted forward of x
    enc = ctx.decrypt(rep.output)
    return model, plain.reshape(enc.shape), enc


def test_linear_and_lora(ctx):
    torch.manual_seed(0)
    lora = htt.LoRALinear(6, 5, rank=2, alpha=2.0).double()
    with torch.no_grad():
        lora.lora_B.normal_()
    seq = torch.nn.Sequential(torch.nn.Linear(4, 6), lora).double()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 4))
    model, plain, enc = run_both(seq, x, ctx)
    assert np.allclose(plain, seq(torch.from_numpy(x)).detach().numpy(), atol=1e-12)  # no approximation
    assert bits(enc, plain) >= 12
    # encrypted adapters: the server holds Enc(A^T), Enc((alpha / r) B^T)
    model[1].encrypt_adapters(ctx)
    assert isinstance(model[1].lora_A, ht.CipherTensor) and "encrypted adapters" in repr(model[1])
    enc2 = ctx.decrypt(model.compile(ctx, x).output)
    assert bits(enc2, plain) >= 12
    with pytest.raises(ValueError, match="adapters are encrypted"):
        model(x)


def test_activations_and_layernorm(ctx):
    torch.manual_seed(1)
    seq = torch.nn.Sequential(torch.nn.Linear(4, 8), htt.LayerNorm(8), torch.nn.GELU(), torch.nn.Linear(8, 8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 4), torch.nn.Tanh()).double()
    with torch.no_grad():
        seq[1].weight.normal_(1.0, 0.3)
    x = np.random.default_rng(1).normal(0, 1, (8, 4))
    model, plain, enc = run_both(seq, x, ctx)
    assert bits(enc, plain) >= 12
    assert model.last_run.bootstraps, "a 3-level budget must bootstrap inside LayerNorm"


def test_gaussian_kernel_attention_with_padding(ctx):
    torch.manual_seed(2)
    att = htt.GaussianKernelAttention(4, 2, lora_rank=1).double()
    x = np.random.default_rng(2).normal(0, 0.7, (2, 3, 4))
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    model, plain, enc = run_both(att, x, ctx, mask=mask)
    exact = att(torch.from_numpy(x), torch.from_numpy(mask)).detach().numpy().reshape(enc.shape)
    assert bits(plain, exact) >= 10  # exp within 2^-14 of its scale, through E v and the projection
    assert bits(enc, plain) >= 12
    run = model.last_run  # q and k (and E and v) refresh together: two tensors per complex-packed bootstrap
    assert any(b.get("paired") for b in run.bootstraps) and run.circuits < len(run.bootstraps)


def test_softmax_attention_renormalised_squarings_with_padding(ctx):
    torch.manual_seed(7)
    att = htt.SoftmaxAttention(4, 1).double()
    x = np.random.default_rng(7).normal(0, 1.5, (2, 3, 4))
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    model, plain, enc = run_both(att, x, ctx, mask=mask)
    assert model.exp_steps()[1] >= 1  # softmax(z / 2), then one squaring with its own reciprocal
    exact = att(torch.from_numpy(x), torch.from_numpy(mask)).detach().numpy().reshape(enc.shape)
    assert bits(plain, exact) >= 10
    assert bits(enc, plain) >= 12


def test_compile_then_forward_needs_no_new_key():
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=12)
    torch.manual_seed(4)
    m = torch.nn.Sequential(htt.GaussianKernelAttention(4, 1, lora_rank=1), torch.nn.Linear(4, 4), torch.nn.Tanh())
    m = m.double()
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (2, 2, 4))
    model = hnn.convert.convert(m)
    model.calibrate(np.concatenate([x, rng.normal(0, 1, (6, 2, 4))]), max_depth=ctx.usable_levels - 1)
    rep = model.compile(ctx, x)
    assert rep.new_rotation_keys > 0 and "bootstraps" in str(rep)
    keys = set(ctx.rotation_steps)
    x2 = rng.normal(0, 1, (2, 2, 4))
    ct, _ = hnn.encrypt_tokens(ctx, x2)
    enc = ctx.decrypt(model(ct, seq_len=2))  # raises MissingKeyError if compile missed one
    assert set(ctx.rotation_steps) == keys
    assert bits(enc, model(x2).reshape(enc.shape)) >= 12
    table = model.profile()
    assert "GaussianKernelAttention" in table and "Tanh" in table


def test_simulate_predicts_the_encrypted_error(ctx):
    torch.manual_seed(5)
    seq = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3)).double()
    x = np.random.default_rng(5).normal(0, 1, (8, 4))
    model, plain, enc = run_both(seq, x, ctx)
    sim = model.simulate(x, ctx)
    assert model.last_run.mode == "simulate"
    assert len(model.last_run.bootstraps) >= 1
    e_enc, e_sim = np.max(np.abs(enc - plain)), np.max(np.abs(sim - plain))
    assert 0 < e_sim and 2.0 ** -8 < e_sim / e_enc < 2.0 ** 8  # the same order of magnitude
