"""hetensor.optim against torch.optim on the same gradients (plain mode, float64)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor.nn as hnn  # noqa: E402
import hetensor.optim as hopt  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from conftest import rel_bits as bits  # noqa: E402


def make_model(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(htt.LoRALinear(5, 4, rank=2), torch.nn.Linear(4, 4), htt.LoRALinear(4, 3, rank=3))
    return hnn.from_torch(net.double(), calibration=np.zeros((2, 5)))


def grad_sequence(params, steps, seed=1):
    """Gradients with |g| in [0.5, 1] (v_hat >> eps, where eps inside or outside the root agree)."""
    rng = np.random.default_rng(seed)
    return [[rng.uniform(0.5, 1.0, p.shape) * rng.choice([-1.0, 1.0], p.shape) for p in params] for _ in range(steps)]


def run_ours(opt_factory, steps=4):
    model = make_model()
    params = list(model.lora_parameters())
    init = [p.data.copy() for p in params]
    opt = opt_factory(params)
    seq = grad_sequence(params, steps)
    for grads in seq:
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        opt.zero_grad()
        assert all(p.grad is None for p in params)
    return init, seq, [p.data for p in params]


def run_torch(init, seq, opt_factory):
    ts = [torch.tensor(v, requires_grad=True) for v in init]
    opt = opt_factory(ts)
    for grads in seq:
        for t, g in zip(ts, grads):
            t.grad = torch.from_numpy(g)
        opt.step()
    return [t.detach().numpy() for t in ts]


def test_adamw_against_torch():
    kw = dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1)
    eps = 2.0 ** -16
    init, seq, ours = run_ours(lambda ps: hopt.AdamW(ps, eps=eps, **kw))
    ref = run_torch(init, seq, lambda ts: torch.optim.AdamW(ts, eps=0.0, **kw))
    for o, r, i in zip(ours, ref, init):
        # eps inside the root against none: relative eps / (2 v_hat) <= 2^-17 of each update
        assert bits(o - i, r - i) >= 15
    # the float64 algorithm with eps inside the root: only the polynomial + Newton error is left
    b1, b2 = kw["betas"]
    exact = []
    for k, p0 in enumerate(init):
        p, m, v = p0.copy(), 0.0, 0.0
        for t, grads in enumerate(seq, 1):
            g = grads[k]
            p = p * (1 - kw["lr"] * kw["weight_decay"])
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            p = p - kw["lr"] * (m / (1 - b1 ** t)) / np.sqrt(v / (1 - b2 ** t) + eps)
        exact.append(p)
    for o, e, i in zip(ours, exact, init):
        assert bits(o - i, e - i) >= 25


def test_sgd_against_torch():
    kw = dict(lr=0.1, momentum=0.9, weight_decay=0.01)
    init, seq, ours = run_ours(lambda ps: hopt.SGD(ps, **kw))
    ref = run_torch(init, seq, lambda ts: torch.optim.SGD(ts, **kw))
    for o, r in zip(ours, ref):
        assert bits(o, r) >= 45


def test_schedules_and_errors():
    f = hopt.cosine_schedule(1.0, 10, warmup=2)
    assert f(1) == 0.5 and f(2) == 1.0 and abs(f(10)) < 1e-15 and abs(f(6) - 0.5) < 1e-15
    assert hopt.constant_schedule(0.3)(7) == 0.3
    model = make_model()
    params = list(model.lora_parameters())
    opt = hopt.SGD(params, lr=lambda step: 0.1 / step)
    assert opt.lr_at(2) == 0.05
    with pytest.raises(ValueError, match="cosine|total_steps"):
        hopt.cosine_schedule(1.0, 3, warmup=3)
    with pytest.raises(TypeError, match="lora_parameters"):
        hopt.AdamW([np.zeros(3)])
    with pytest.raises(ValueError, match="no parameters"):
        hopt.AdamW([])
    with pytest.raises(ValueError, match="shape"):
        params[0].grad = np.zeros((1, 1))
    with pytest.raises(ValueError, match="NaN"):
        params[0].grad = np.full(params[0].shape, np.nan)
    with pytest.raises(ValueError, match="betas"):
        hopt.AdamW(params, betas=(1.0, 0.9))
