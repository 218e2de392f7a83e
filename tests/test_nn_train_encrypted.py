"""Encrypted training at the toy bootstrapping preset against plain mode.

Plain mode is the exact reference (the same polynomials in float64, tested
against torch autograd in test_nn_backward.py); the encrypted gradients and the
AdamW update must agree with it to >= 10 bits (CKKS noise through products,
bootstraps and the optimizer's inverse square root).
"""

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor as ht  # noqa: E402
import hetensor.nn as hnn  # noqa: E402
import hetensor.optim as hopt  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from _lora_nets import lora_into_attention  # noqa: E402
from conftest import rel_bits as bits  # noqa: E402

PRESET = "toy-boot-insecure"


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset(PRESET, bootstrap=True, seed=5)


def lora_model(ctx, seed, d_out, then=None):
    """LoRALinear(4, d_out, rank 2, alpha 2), B ~ N(0, 1) after ``torch.manual_seed(seed)`` (and a
    second LoRALinear(d_out, then) when ``then``), as an HE model calibrated for training with MSE
    at ``ctx``'s depth on x (8 x 4, uniform in [-1, 1]) and a target ~ N(0, 1) drawn from
    ``np.random.default_rng(seed)``: (model, loss, x, target, that generator)."""
    torch.manual_seed(seed)
    l1 = htt.LoRALinear(4, d_out, rank=2, alpha=2.0)
    with torch.no_grad():
        l1.lora_B.normal_()
    layers = [l1] if then is None else [l1, htt.LoRALinear(d_out, then, rank=2, alpha=2.0)]
    net = torch.nn.Sequential(*layers).double()
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (8, 4))
    target = rng.normal(0, 1, (8, d_out if then is None else then))
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1)
    loss = hnn.MSELoss()
    hnn.calibrate_training(model, x, target, loss)
    return model, loss, x, target, rng


def natural(p, ctx):
    """A decrypted encrypted adapter (A^T, s B^T) or its gradient in torch's (A, B) form."""
    return ctx.decrypt(p).T


def _plain_backward(model, x, target, loss, tokens, params):
    model.train()
    out = model(x)
    model.backward(loss(out.reshape(target.shape) if tokens else out, target))
    return [p.grad.copy() for p in params]


def _encrypted_backward(model, ctx, x, target, loss, tokens):
    model.zero_grad()
    hnn.encrypt_adapters(model, ctx)
    if tokens:
        ct, seq_len = hnn.encrypt_tokens(ctx, x)
        out = model(ct, seq_len=seq_len, auto_keys=True)
    else:
        out = model(ctx.encrypt(x, layout="matrix"), auto_keys=True)
    model.backward(loss(out, target))


def plain_then_encrypted_gradients(model, ctx, x, target, loss, tokens=False):
    """One plain backward (its adapter gradients copied and returned: the reference), then the
    same backward encrypted, leaving the encrypted gradients in ``p.grad``. ``tokens``: x is
    (batch, seq, d) and is encrypted with ``hnn.encrypt_tokens``; else a matrix."""
    plain = _plain_backward(model, x, target, loss, tokens, list(model.lora_parameters()))
    _encrypted_backward(model, ctx, x, target, loss, tokens)
    return plain


def plain_adamw_then_encrypted_gradients(model, ctx, x, target, loss, params, adamw, tokens=False):
    """As :func:`plain_then_encrypted_gradients` for ``params``, with one plain ``AdamW(**adamw)``
    step of them in between, undone (their data put back): (plain gradients, data before the
    step, the plain step)."""
    plain = _plain_backward(model, x, target, loss, tokens, params)
    init = [p.data.copy() for p in params]
    hopt.AdamW(params, **adamw).step()
    plain_step = [p.data - i for p, i in zip(params, init)]
    for p, i in zip(params, init):
        p.data = i
    _encrypted_backward(model, ctx, x, target, loss, tokens)
    return plain, init, plain_step


def planned_training_refreshes(model, ctx, shape, target, loss):
    """A training forward and the backward of ``loss`` planned on ghost tensors (hetensor.nn.plan):
    the refreshed tensors as (module, site, level)."""
    from hetensor.nn.autograd import backward_module
    from hetensor.nn.plan import Recorder, _ghost_input
    from hetensor.nn.run import Run
    from hetensor.nn.tape import Tape

    b, t, d = shape
    model.zero_grad()  # the planned gradients would accumulate onto the last backward's
    run = Run(model, "plan", ctx=ctx, batch=b, seq_len=t)
    run.tape = Tape()
    y = run.call(model, _ghost_input(ctx, b * t, d, Recorder()))
    backward_module(model, loss.gradient(y, target, run), run)
    return [(r["module"], r["site"], r["level"]) for r in run.bootstraps]


def test_lora_gradients_and_adamw_step(ctx):
    model, loss, x, target, _ = lora_model(ctx, 0, 6, then=3)
    params = list(model.lora_parameters())
    kw = dict(lr=0.05, eps=0.1, weight_decay=0.01, extra_newton=0)  # a short 1/sqrt interval: few Newton steps
    plain_grads, init, plain_step = plain_adamw_then_encrypted_gradients(model, ctx, x, target, loss, params, kw)
    for p, g in zip(params, plain_grads):
        enc = natural(p.grad, ctx) * p.scale
        if np.max(np.abs(g)) == 0:  # dA of the adapter whose B is 0
            assert np.max(np.abs(enc)) < 1e-3
        else:
            assert bits(enc, g) >= 10, p
    opt = hopt.AdamW(params, **kw)
    opt.step()
    for p, i, d in zip(params, init, plain_step):
        enc = natural(p.data, ctx) / p.scale
        if np.max(np.abs(d)) > 0:
            assert bits(enc - i, d) >= 10, p
    assert all(isinstance(st["m"].t, ht.CipherTensor) for st in opt.state.values())


@pytest.mark.slow
def test_adamw_step_at_eight_levels_per_polynomial():
    """n12-boot9-insecure (n16-boot's 8 levels per polynomial): AdamW's 1/sqrt is a degree-255
    polynomial on [2^-17, 1] plus Newton steps, whose output carries ~2^21 times the imaginary
    noise of its input. Before complex-packed bootstraps dropped imaginary parts before
    packing, that noise reached the paired operand and the update kept 1-3 bits (measured
    1.1 and 3.5); now >= 12 (measured 14.3)."""
    bctx = ht.Context.from_preset("n12-boot9-insecure", bootstrap=True, seed=5)
    model, loss, x, target, _ = lora_model(bctx, 0, 6)
    params = list(model.lora_parameters())
    kw = dict(lr=0.05, eps=1e-5, weight_decay=0.01)
    poly, _, _ = hopt.AdamW(params, **kw).inv_sqrt_plan(params[1], SimpleNamespace(mode="encrypted", ctx=bctx))
    assert poly.depth == 8 and poly.a <= 2.0 ** -15
    _, init, plain_step = plain_adamw_then_encrypted_gradients(model, bctx, x, target, loss, params, kw)
    hopt.AdamW(params, **kw).step()
    for p, i, d in zip(params, init, plain_step):
        assert bits(natural(p.data, bctx) / p.scale - i, d) >= 12, p


def test_cross_entropy_gradient_encrypted(ctx):
    """A LoRA layer into 10-class cross-entropy (normalise-and-square softmax, its
    reciprocals on [1/16, 1]): the encrypted adapter gradients against plain mode."""
    torch.manual_seed(1)
    lin = htt.LoRALinear(4, 10, rank=2, alpha=2.0)
    with torch.no_grad():
        lin.base.weight.mul_(4.0)
        lin.lora_B.normal_()
    net = torch.nn.Sequential(lin).double()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (8, 4))
    y = rng.integers(0, 10, 8)
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1)
    loss = hnn.CrossEntropyLoss()
    hnn.calibrate_training(model, x, y, loss)
    params = list(model.lora_parameters())
    assert loss.steps(ctx.usable_levels - 1, 10).k >= 1  # at least one normalised squaring runs
    plain_grads = plain_then_encrypted_gradients(model, ctx, x, y, loss)
    for p, g in zip(params, plain_grads):
        assert bits(natural(p.grad, ctx) * p.scale, g) >= 10, p
    assert any(b["site"].startswith("loss.") for b in model.last_run.bootstraps)


def test_adamw_encrypted_against_torch(ctx):
    """Two AdamW steps on encrypted adapters and moments against torch.optim.AdamW on the
    same gradients. The gradients are kept away from 0 (|g| in [G/2, G], G the largest
    gradient calibration saw) and eps small (G^2 / 2^13: one optimizer per parameter), where
    eps inside the root (the paper's form, hetensor's) and torch's eps = 0 agree to ~2^-12 of
    the update; 1/sqrt runs on [2^-15, 1]."""
    from hetensor.nn.autograd import GRAD_MARGIN, grad_bound

    model, _, x, target, rng = lora_model(ctx, 2, 6)
    params = list(model.lora_parameters())
    bounds = [grad_bound(p) / (1.0 + GRAD_MARGIN) for p in params]
    grads = [[rng.choice([-1.0, 1.0], p.shape) * rng.uniform(G / 2, G, p.shape) for p, G in zip(params, bounds)]
             for _ in range(2)]
    lr, wd, betas = 0.05, 0.01, (0.9, 0.99)
    ref = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    topt = torch.optim.AdamW(ref, lr=lr, betas=betas, eps=0.0, weight_decay=wd)
    init = [p.data.copy() for p in params]
    hnn.encrypt_adapters(model, ctx)
    opts = [hopt.AdamW([p], lr=lr, betas=betas, eps=G * G * 2.0 ** -13, weight_decay=wd, extra_newton=0)
            for p, G in zip(params, bounds)]
    for gs in grads:
        for p, g, r in zip(params, gs, ref):
            p.grad = ctx.encrypt(g.T / p.scale, layout="matrix")  # the stored form (A^T, s B^T)
            r.grad = torch.from_numpy(g.copy())
        for opt in opts:
            opt.step()
        topt.step()
    assert all(isinstance(st["m"].t, ht.CipherTensor) and isinstance(st["v"].t, ht.CipherTensor)
               for opt in opts for st in opt.state.values())
    for p, i, r in zip(params, init, ref):
        got = natural(p.data, ctx) / p.scale
        assert bits(got - i, r.detach().numpy() - i) >= 10, p


@pytest.mark.parametrize("form", ["per-sequence", pytest.param("dense", marks=pytest.mark.slow)])
def test_gk_attention_gradients_encrypted(ctx, form):
    """A LoRA layer into Gaussian-kernel attention (rank-2 adapters on q, k, v; two heads of
    two sequences, so the per-sequence form by default: rolled keys and values, small
    plaintext products; or the dense form): the encrypted adapter gradients against plain
    mode (>= 10 bits)."""
    net = lora_into_attention(htt.GaussianKernelAttention, 4, 2, seed=4)
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (2, 3, 4))
    target = rng.normal(0, 1, (6, 4))
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1)
    model[1].per_sequence = form == "per-sequence"
    loss = hnn.MSELoss()
    hnn.calibrate_training(model, x, target.reshape(2, 3, 4), loss, batch_size=2)
    params = list(model.lora_parameters())
    # simulate mode (the levels, bootstraps and measured noise of ctx; plaintext adapters)
    model.train()
    model.backward(loss(model.simulate(x, ctx, rng=np.random.default_rng(0)).reshape(6, 4), target))
    assert model.last_run.mode == "simulate" and model.last_run.bootstraps
    simulated = [p.grad.copy() for p in params]
    model.zero_grad()
    plain_grads = plain_then_encrypted_gradients(model, ctx, x, target, loss, tokens=True)
    assert len(params) == 8
    assert any(st["site"] == "values_p" for st in model.last_run.sites) == (form == "per-sequence")
    got = [bits(natural(p.grad, ctx) * p.scale, g) for p, g in zip(params, plain_grads)]
    sim = [bits(s, g) for s, g in zip(simulated, plain_grads)]
    print("bits per adapter gradient: encrypted", " ".join(f"{b:.1f}" for b in got), "simulated",
          " ".join(f"{b:.1f}" for b in sim))
    assert min(got) >= 10 and min(sim) >= 10
    # the plan of the same step (ghosts: no data) refreshes the same tensors at the same levels
    refreshed = [(r["module"], r["site"], r["level"]) for r in model.last_run.bootstraps]
    assert planned_training_refreshes(model, ctx, x.shape, target, loss) == refreshed


@pytest.mark.slow
def test_softmax_attention_gradients_encrypted(ctx):
    """A LoRA layer into the range-reduced softmax attention (one head, two sequences of three
    tokens; scores spread so that one normalised squaring and Newton steps run): the encrypted
    adapter gradients against plain mode (>= 10 bits)."""
    net = lora_into_attention(htt.SoftmaxAttention, 4, 1, seed=5, q_gain=3.0)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (2, 3, 4))
    target = rng.normal(0, 1, (6, 4))
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1)
    loss = hnn.MSELoss()
    hnn.calibrate_training(model, x, target.reshape(2, 3, 4), loss, batch_size=2)
    assert model[1].exp_steps()[1] >= 1
    params = list(model.lora_parameters())
    plain_grads = plain_then_encrypted_gradients(model, ctx, x, target, loss, tokens=True)
    assert len(params) == 8
    got = [bits(natural(p.grad, ctx) * p.scale, g) for p, g in zip(params, plain_grads)]
    print("bits per adapter gradient:", " ".join(f"{b:.1f}" for b in got))
    assert min(got) >= 10


@pytest.mark.slow
def test_layernorm_gradients_encrypted(ctx):
    """LoRA -> LayerNorm -> LoRA: the gradient of the first adapters passes back through
    LayerNorm's backward (its inverse square root's polynomial and Newton steps, the
    centring and the variance product) under encryption; against plain mode (>= 10 bits)."""
    torch.manual_seed(7)
    l1 = htt.LoRALinear(4, 6, rank=2)
    ln = htt.LayerNorm(6)
    l2 = htt.LoRALinear(6, 3, rank=2)
    with torch.no_grad():
        l1.lora_B.normal_()
        l2.lora_B.normal_()
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_()
    net = torch.nn.Sequential(l1, ln, l2).double()
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (8, 4))
    target = rng.normal(0, 1, (8, 3))
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1)
    loss = hnn.MSELoss()
    hnn.calibrate_training(model, x, target, loss)
    params = list(model.lora_parameters())
    plain_grads = plain_then_encrypted_gradients(model, ctx, x, target, loss)
    assert len(params) == 4 and all(np.max(np.abs(g)) > 0 for g in plain_grads)
    got = [bits(natural(p.grad, ctx) * p.scale, g) for p, g in zip(params, plain_grads)]
    print("bits per adapter gradient:", " ".join(f"{b:.1f}" for b in got))
    assert min(got) >= 10


@pytest.mark.slow
def test_full_qkv_gradients_and_adamw_encrypted(ctx):
    """Full fine-tuning (hnn.full_qkv) of a one-head softmax attention: the encrypted weight
    gradients (x^T dY, a CCMM) and one AdamW step of the encrypted 4 x 4 weights against
    plain mode (>= 10 bits)."""
    torch.manual_seed(8)
    att = htt.SoftmaxAttention(4, 1, lora_rank=2)
    net = torch.nn.Sequential(htt.LoRALinear(4, 4, rank=2), att).double()
    rng = np.random.default_rng(8)
    x = rng.normal(0, 1, (2, 3, 4))
    target = rng.normal(0, 1, (6, 4))
    model = hnn.full_qkv(hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1))
    loss = hnn.MSELoss()
    kw = dict(lr=0.01, eps=1e-2, weight_decay=0.01, extra_newton=0)
    hnn.calibrate_training(model, x, target.reshape(2, 3, 4), loss, batch_size=2,
                           optimizer=lambda ps: hopt.AdamW(ps, **kw))
    params = [p for p in model.lora_parameters() if p.name == "weight"]
    plain_grads, init, plain_step = plain_adamw_then_encrypted_gradients(model, ctx, x, target, loss, params, kw,
                                                                         tokens=True)
    assert len(params) == 3
    got = [bits(natural(p.grad, ctx), g) for p, g in zip(params, plain_grads)]
    hopt.AdamW(params, **kw).step()
    got += [bits(natural(p.data, ctx) - i, d) for p, i, d in zip(params, init, plain_step)]
    print("bits (gradients, then updates):", " ".join(f"{b:.1f}" for b in got))
    assert min(got) >= 10


def test_checkpoint_of_encrypted_adapters_round_trip(ctx, tmp_path):
    """Trainer.save_checkpoint / load_checkpoint with encrypted adapters and AdamW moments:
    the restored ciphertexts decrypt to the saved values and training continues from them."""
    torch.manual_seed(6)
    lin = htt.LoRALinear(4, 3, rank=2, alpha=2.0)
    with torch.no_grad():
        lin.lora_B.normal_()
    net = torch.nn.Sequential(lin).double()
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, (8, 4))
    target = rng.normal(0, 1, (8, 3))

    def trainer():
        model = hnn.from_torch(net, calibration=x, max_depth=ctx.usable_levels - 1)
        hnn.calibrate_training(model, x, target, hnn.MSELoss(), batch_size=8)
        hnn.encrypt_adapters(model, ctx)
        opt = hopt.AdamW(model.lora_parameters(), lr=0.05, eps=0.1, weight_decay=0.01, extra_newton=0)
        return hnn.Trainer(model, opt, hnn.MSELoss(), mode="encrypted", ctx=ctx, progress=False)

    tr = trainer()
    tr.fit(x, target, steps=1, batch_size=8)
    tr.save_checkpoint(str(tmp_path / "ck"))
    saved = [ctx.decrypt(p.data) for p in tr.model.lora_parameters()]
    moments = [(ctx.decrypt(st["m"].t), ctx.decrypt(st["v"].t)) for st in tr.optimizer.state.values()]
    back = trainer()
    back.load_checkpoint(str(tmp_path / "ck"))
    assert back.optimizer.steps == 1 and len(back.history) == 1
    for p, s in zip(back.model.lora_parameters(), saved):
        assert isinstance(p.data, ht.CipherTensor)
        assert np.array_equal(ctx.decrypt(p.data), s)  # the same ciphertext, bit for bit
    for st, (m, v) in zip(back.optimizer.state.values(), moments):
        assert st["t"] == 1 and np.array_equal(ctx.decrypt(st["m"].t), m) and np.array_equal(ctx.decrypt(st["v"].t), v)
    m2 = hnn.from_torch(torch.nn.Sequential(htt.LoRALinear(4, 3, rank=2), htt.LoRALinear(3, 3, rank=2)).double(),
                        calibration=x)
    other = hnn.Trainer(m2, hopt.SGD(m2.lora_parameters(), lr=0.1), hnn.MSELoss(), progress=False)
    with pytest.raises(ValueError, match="the checkpoint holds 2 parameters, the model 4"):
        other.load_checkpoint(str(tmp_path / "ck"))


def test_n12_boot9_preset_has_n16_boots_depth():
    """n12-boot9-insecure: n16-boot's chain at N = 2^12 (9 levels after a bootstrap)."""
    deep = ht.Context.from_preset("n12-boot9-insecure", bootstrap=True, seed=3)
    assert deep.usable_levels == 9 and deep.fresh_level == 12 and "INSECURE" in repr(deep)
    x = np.random.default_rng(3).uniform(-1, 1, 64)
    y = deep.encrypt(x).level_to(deep.bootstrap_contract.input_level).bootstrap()
    assert y.level == 12
    assert bits(deep.decrypt(y)[:64], x) >= 20
