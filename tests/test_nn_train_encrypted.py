"""Encrypted training at the toy bootstrapping preset against plain mode.

Plain mode is the exact reference (the same polynomials in float64, tested
against torch autograd in test_nn_backward.py); the encrypted gradients and the
AdamW update must agree with it to >= 10 bits (CKKS noise through products,
bootstraps and the optimizer's inverse square root).
"""

import math
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor as ht  # noqa: E402
import hetensor.nn as hnn  # noqa: E402
import hetensor.optim as hopt  # noqa: E402
from hetensor import torch as htt  # noqa: E402

PRESET = "toy-boot-insecure"


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset(PRESET, bootstrap=True, seed=5)


def bits(a, b):
    err = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    return math.inf if err == 0 else -math.log2(err / max(float(np.max(np.abs(b))), 1e-300))


def natural(p, ctx):
    """A decrypted encrypted adapter (A^T, s B^T) or its gradient in torch's (A, B) form."""
    return ctx.decrypt(p).T


def test_lora_gradients_and_adamw_step(ctx):
    torch.manual_seed(0)
    l1 = htt.LoRALinear(4, 6, rank=2, alpha=2.0)
    with torch.no_grad():
        l1.lora_B.normal_()
    net = torch.nn.Sequential(l1, htt.LoRALinear(6, 3, rank=2, alpha=2.0)).double()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 4))
    target = rng.normal(0, 1, (8, 3))
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.fresh_level - 1)
    loss = hnn.MSELoss()
    hnn.calibrate_training(model, x, target, loss)
    params = list(model.lora_parameters())
    # plain: gradients and one AdamW step
    model.train()
    model.backward(loss(model(x), target))
    plain_grads = [p.grad.copy() for p in params]
    init = [p.data.copy() for p in params]
    kw = dict(lr=0.05, eps=0.1, weight_decay=0.01, extra_newton=0)  # a short 1/sqrt interval: few Newton steps
    hopt.AdamW(params, **kw).step()
    plain_step = [p.data - i for p, i in zip(params, init)]
    for p, i in zip(params, init):
        p.data = i
    model.zero_grad()
    # encrypted
    hnn.encrypt_adapters(model, ctx)
    out = model(ctx.encrypt(x, layout="matrix"), auto_keys=True)
    model.backward(loss(out, target))
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
    model = hnn.from_torch(net, calibration=x, max_depth=ctx.fresh_level - 1)
    loss = hnn.CrossEntropyLoss()
    hnn.calibrate_training(model, x, y, loss)
    params = list(model.lora_parameters())
    model.train()
    model.backward(loss(model(x), y))
    plain_grads = [p.grad.copy() for p in params]
    model.zero_grad()
    assert loss.steps(ctx.fresh_level - 1, 10).k >= 1  # at least one normalised squaring runs
    hnn.encrypt_adapters(model, ctx)
    out = model(ctx.encrypt(x, layout="matrix"), auto_keys=True)
    model.backward(loss(out, y))
    for p, g in zip(params, plain_grads):
        assert bits(natural(p.grad, ctx) * p.scale, g) >= 10, p
    assert any(b["site"].startswith("loss.") for b in model.last_run.bootstraps)
