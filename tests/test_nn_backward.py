"""Backward passes of hetensor.nn in plain mode against torch autograd.

The reference runs *the same forward code* on torch float64 tensors
(``TorchArray``: the tensor interface over torch, polynomials by Clenshaw in
torch), so autograd gives the exact gradient of the polynomial model; plain
mode must agree to >= 30 bits. A second check compares with autograd on the
exact ``hetensor.torch`` twin, within the approximations' own error.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor.nn as hnn  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from hetensor.nn import linear as linear_mod  # noqa: E402
from hetensor.nn.run import Run  # noqa: E402
from hetensor.nn.tensors import PlainArray  # noqa: E402
from _lora_nets import lora_into_attention  # noqa: E402
from conftest import rel_bits as bits  # noqa: E402


class TorchArray(PlainArray):
    """The tensor interface over torch float64 tensors (autograd through the forward)."""

    def __init__(self, values):
        self.v = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values, dtype=np.float64))

    def numpy(self):
        return self.v.detach().numpy()

    def _new(self, v, levels=0, kind="", peer=None):
        return TorchArray(v)

    def _value(self, other):
        if isinstance(other, PlainArray):
            return other.v
        if isinstance(other, (int, float)):
            return float(other)
        if isinstance(other, torch.Tensor):
            return other
        return torch.as_tensor(np.asarray(other, dtype=np.float64))

    @property
    def T(self):
        return TorchArray(self.v.transpose(-1, -2))

    def roll_rows(self, shift, block):  # inference's per-sequence attention (the same function as the dense one)
        v = self.v.reshape(-1, block, *self.v.shape[1:])
        return TorchArray(torch.roll(v, -shift, dims=1).reshape(self.v.shape))

    def polyval(self, poly):
        y = (2.0 * self.v - (poly.a + poly.b)) / (poly.b - poly.a)
        c = [float(v) for v in poly.coeffs]
        b1 = b2 = torch.zeros_like(y)
        for ck in reversed(c[1:]):
            b1, b2 = 2.0 * y * b1 - b2 + ck, b1
        return TorchArray(y * b1 - b2 + c[0])


class _Mask:
    """A 0/1 column mask that multiplies numpy arrays and torch tensors alike."""

    __array_ufunc__ = None

    def __init__(self, m):
        self.m = m

    def __rmul__(self, other):
        return other * (torch.from_numpy(self.m) if isinstance(other, torch.Tensor) else self.m)

    __mul__ = __rmul__


def torch_reference(model, x, G, seq_len=None, monkeypatch=None, mask=None):
    """Autograd of sum(model(x) * G) over the polynomial model: grads of x and of every adapter."""
    params = list(model.lora_parameters())
    saved = [(p.module, p.name, p.data) for p in params]
    leaves = []
    for m, name, v in saved:
        t = torch.tensor(v, requires_grad=True)
        m._params[name] = t
        object.__setattr__(m, name, t)
        m._changed()
        leaves.append(t)
    monkeypatch.setattr(hnn.LoRALinear, "adapters_encrypted", property(lambda self: False))
    orig_mask = linear_mod._col_mask
    monkeypatch.setattr(linear_mod, "_col_mask", lambda n, cols: None if cols is None else _Mask(orig_mask(n, cols)))
    xt = torch.tensor(x.reshape(-1, x.shape[-1]), requires_grad=True)
    batch = x.shape[0] if x.ndim == 3 else x.shape[0] // (seq_len or 1)
    run = Run(model, "plain", batch=batch, seq_len=x.shape[1] if x.ndim == 3 else (seq_len or 1), key_mask=mask)
    out = run.call(model, TorchArray(xt)).v
    (out * torch.as_tensor(G).reshape(out.shape)).sum().backward()
    monkeypatch.undo()
    for (m, name, v) in saved:
        m.register_parameter(name, v, trainable=True)
        m._changed()
    return xt.grad.numpy(), [t.grad.numpy() for t in leaves], out.detach().numpy()


def plain_grads(model, x, G):
    model.train()
    model.zero_grad()
    out = model(x)
    model.backward(G.reshape(np.shape(out)))
    return out, [p.grad for p in model.lora_parameters()]


def check(tmodel, x, out_shape_fn=None, min_bits=30, monkeypatch=None, seed=0, max_depth=5, prepare=None):
    model = hnn.from_torch(tmodel, calibration=x, max_depth=max_depth)
    if prepare is not None:
        model = prepare(model)
    out0 = model(x)
    G = np.random.default_rng(seed).normal(0, 1, np.shape(out0))
    out, grads = plain_grads(model, x, G)
    _, ref_grads, ref_out = torch_reference(model, x, G, monkeypatch=monkeypatch)
    assert bits(out, ref_out.reshape(np.shape(out))) >= 40
    assert len(grads) == len(ref_grads) > 0
    for g, r in zip(grads, ref_grads):
        assert g.shape == r.shape
        assert bits(g, r) >= min_bits, (bits(g, r), g.shape)
    return model, G, grads


def test_lora_linear_and_relu(monkeypatch):
    torch.manual_seed(0)
    l1 = htt.LoRALinear(5, 6, rank=2, alpha=2.0)
    l2 = htt.LoRALinear(6, 3, rank=3, alpha=1.0)
    with torch.no_grad():
        l1.lora_B.normal_()
        l2.lora_B.normal_()
    net = torch.nn.Sequential(l1, torch.nn.GELU(), torch.nn.Linear(6, 6), l2).double()
    x = np.random.default_rng(1).uniform(-1, 1, (7, 5))
    check(net, x, monkeypatch=monkeypatch)


def test_layernorm_backward(monkeypatch):
    torch.manual_seed(1)
    l1 = htt.LoRALinear(4, 6, rank=2)
    with torch.no_grad():
        l1.lora_B.normal_()
    ln = htt.LayerNorm(6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_()
    net = torch.nn.Sequential(l1, ln, htt.LoRALinear(6, 2, rank=2)).double()
    x = np.random.default_rng(2).normal(0, 1, (9, 4))
    check(net, x, monkeypatch=monkeypatch)


def test_gk_attention_backward(monkeypatch):
    net = lora_into_attention(htt.GaussianKernelAttention, 8, 2, seed=2)
    x = np.random.default_rng(3).normal(0, 1, (2, 3, 4))
    model, _, grads = check(net, x, monkeypatch=monkeypatch)
    assert len(grads) == 8 and all(np.max(np.abs(g)) > 0 for g in grads)


@pytest.mark.parametrize("attention", [htt.SoftmaxAttention, htt.GaussianKernelAttention])
def test_full_qkv_backward(monkeypatch, attention):
    """Full fine-tuning (hnn.full_qkv: the q, k, v weights train, LoRA merged in): the
    gradients of the three weights and of the adapter below against autograd (>= 30 bits)."""
    net = lora_into_attention(attention, 8, 2, seed=6)
    att = net[1]
    x = np.random.default_rng(6).normal(0, 1, (2, 3, 4))
    merged = att.q.base.weight.detach().numpy() + att.q.scaling * (att.q.lora_B @ att.q.lora_A).detach().numpy()
    model, _, grads = check(net, x, monkeypatch=monkeypatch, prepare=hnn.full_qkv)
    params = list(model.lora_parameters())
    assert [(type(p.module).__name__, p.name) for p in params] == \
        [("LoRALinear", "lora_A"), ("LoRALinear", "lora_B")] + [("TrainableLinear", "weight")] * 3
    assert np.array_equal(params[2].data, merged)
    assert all(g.shape == (8, 8) and np.max(np.abs(g)) > 0 for g in grads[2:])


def test_full_qkv_refuses_what_it_cannot_train():
    with pytest.raises(ValueError, match="no attention layer"):
        hnn.full_qkv(hnn.Sequential(hnn.Linear(3, 3)))
    with pytest.raises(ValueError, match=r"\(out, in\)"):
        hnn.TrainableLinear(np.zeros(3))
    with pytest.raises(ValueError, match="bias must have 2"):
        hnn.TrainableLinear(np.zeros((2, 3)), np.zeros(3))


def test_classifier_backward_against_exact_twin(monkeypatch):
    """Two encoder layers: the gradients of the polynomial model (>= 30 bits against
    autograd on the same forward) and of the exact twin (within the fits' error)."""
    torch.manual_seed(3)
    tm = htt.TransformerClassifier(4, 8, 2, 16, 2, 3, 3, lora_rank=2, activation="gelu").double()
    for n, p in tm.named_parameters():
        if "lora_B" in n:
            with torch.no_grad():
                p.normal_(0, 0.2)
    x = np.random.default_rng(4).normal(0, 1, (4, 3, 4))
    model, G, grads = check(tm, x, monkeypatch=monkeypatch)
    # the exact twin: autograd on htt with exp, 1/sqrt and GELU exact
    xt = torch.from_numpy(x)
    (tm(xt) * torch.from_numpy(G)).sum().backward()
    twin = [p.grad.numpy() for n, p in tm.named_parameters() if "lora_" in n]
    names = [f"{type(p.module).__name__}.{p.name}" for p in model.lora_parameters()]
    assert len(twin) == len(grads) == 12, names
    for g, r in zip(grads, twin):
        assert bits(g, r) >= 6


def test_cross_entropy_and_mse_gradients():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 2, (16, 5))
    y = rng.integers(0, 5, 16)
    loss = hnn.functional.cross_entropy(z, y)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.from_numpy(y))
    ref.backward()
    assert bits(loss.item(), ref.item()) >= 45
    assert bits(loss.grad, zt.grad.numpy()) >= 20  # the softmax's exp (2^-24 relative) and 1/x (2^-28)
    t = rng.normal(0, 1, (16, 5))
    mse = hnn.functional.mse_loss(z, t)
    zt2 = torch.tensor(z, requires_grad=True)
    r2 = torch.nn.functional.mse_loss(zt2, torch.from_numpy(t))
    r2.backward()
    assert bits(mse.item(), r2.item()) >= 45
    assert bits(mse.grad, zt2.grad.numpy()) >= 45
    with pytest.raises(ValueError, match="class targets must lie"):
        hnn.functional.cross_entropy(z, np.full(16, 7)).grad
    with pytest.raises(ValueError, match="not calibrated"):
        hnn.CrossEntropyLoss().gradient(PlainArray(z), y, None)


@pytest.mark.parametrize("depth", [3, 8])
def test_cross_entropy_wide_logits(depth):
    """10 classes with centred logits 45 wide (the digits model's range, where one
    reciprocal of sum(exp) would run on [3e-5, 1]): the normalise-and-square softmax
    keeps >= 18 bits of the probabilities at the toy preset's 3 levels and at 8."""
    from hetensor.nn.loss import softmax_steps

    rng = np.random.default_rng(7)
    z = rng.normal(0, 7, (64, 10))
    z[0] = np.r_[30.0, np.zeros(9)]  # one row far from uniform, one exactly uniform
    z[1] = 0.0
    y = rng.integers(0, 10, 64)
    crit = hnn.CrossEntropyLoss(max_depth=depth)
    g = crit(z, y).grad
    u = z - z.max(1, keepdims=True)
    p = np.exp(u) / np.exp(u).sum(1, keepdims=True)
    ref = (p - np.eye(10)[y]) / 64
    assert bits(g, ref) >= 18
    lo, hi = crit.shifted_interval()
    st = crit.steps(depth, 10)
    assert st.k >= 4 and st.recip.a >= 1 / 16  # every reciprocal on a short interval
    assert np.exp((lo - hi) / 2 ** st.k) >= 0.1
    with pytest.raises(ValueError, match="at least 2 classes"):
        softmax_steps(-5.0, 1, depth)
    with pytest.raises(ValueError, match="lo < hi"):
        softmax_steps(float("nan"), 10, depth)


def test_backward_needs_a_training_forward():
    torch.manual_seed(0)
    model = hnn.from_torch(torch.nn.Sequential(htt.LoRALinear(3, 2)).double(), calibration=np.zeros((2, 3)))
    x = np.ones((2, 3))
    out = model.eval()(x)
    with pytest.raises(RuntimeError, match="model.train"):
        model.backward(np.ones_like(out))
    model.train()
    out = model(x)
    with pytest.raises(ValueError, match="shape"):
        model.backward(np.ones((3, 3)))
    model(x)
    model.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="model.train"):  # the tape is freed after one backward
        model.backward(np.ones_like(out))


@pytest.mark.parametrize("max_depth", [3, 5])
def test_softmax_attention_backward(monkeypatch, max_depth):
    """Through the range-reduced softmax (softmax(z / 2^K), then K normalised squarings, each
    reciprocal a polynomial plus Newton steps): plain mode against autograd on the same
    forward (>= 30 bits); the scores are spread so that K >= 1, and at 3 levels per
    polynomial Newton steps run."""
    net = lora_into_attention(htt.SoftmaxAttention, 8, 2, seed=4, q_gain=3.0)
    x = np.random.default_rng(4).normal(0, 1, (2, 3, 4))
    model, _, grads = check(net, x, monkeypatch=monkeypatch, max_depth=max_depth)
    sm = model[1]
    _, K = sm.exp_steps()
    newton = sm._reciprocal(1.0 / (3 * 1.05 * 1.05))[1]  # the squarings' 1/x on [1 / (1.05^2 seq_len), 1]
    assert K >= 1 and (newton >= 1) == (max_depth == 3)
    assert len(grads) == 8 and all(np.max(np.abs(g)) > 0 for g in grads)


def input_and_weight_grads(model, x, G, mask):
    """One training forward and backward in plain mode: (output, dX of the model's input,
    the trainable weights' gradients, whether attention ran its per-sequence form)."""
    from hetensor.nn.autograd import backward_module
    from hetensor.nn.backward import _ran_per_sequence

    model.train()
    model.zero_grad()
    out = model(x, mask=mask)
    run = model.last_run
    att = [m for m in model.modules() if isinstance(m, (hnn.GaussianKernelAttention, hnn.SoftmaxAttention))]
    packed = all(_ran_per_sequence(m, run) for m in att)
    for key in run.tape.need_dx:  # the input gradient too (backward skips it below the first adapter)
        run.tape.need_dx[key] = True
    dx = backward_module(model, PlainArray(G.reshape(run.tape.output.shape)), run).numpy()
    run.tape = None
    return out, dx, [p.grad.copy() for p in model.lora_parameters()], packed


@pytest.mark.parametrize("kind", ["gk", "softmax", "gk-full", "softmax-full"])
def test_per_sequence_backward(monkeypatch, kind):
    """A training forward of several sequences runs per-sequence attention (rolled keys and
    values, (n, T H) scores, no encrypted x encrypted score product); its backward, with
    padded keys: dX and the gradients of the q/k/v adapters (or of the q/k/v weights,
    hnn.full_qkv) against torch autograd on the same forward (>= 30 bits), and equal to the
    dense form's (tokens x tokens scores, block-diagonal mask) to ~2^-40."""
    softmax = kind.startswith("softmax")
    # softmax: spread scores (K >= 1 normalised squarings)
    net = lora_into_attention(htt.SoftmaxAttention if softmax else htt.GaussianKernelAttention, 8, 2, seed=9,
                              q_gain=3.0 if softmax else None)
    rng = np.random.default_rng(9)
    x = rng.normal(0, 1, (3, 4, 4))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.float64)  # padded keys
    model = hnn.from_torch(net, calibration=x, mask=mask, max_depth=4)
    if kind.endswith("full"):
        model = hnn.full_qkv(model)
    if softmax:
        assert model[1].exp_steps()[1] >= 1
    G = rng.normal(0, 1, (12, 8))
    out, dx, grads, packed = input_and_weight_grads(model, x, G, mask)
    assert packed and len(grads) == (5 if kind.endswith("full") else 8)
    assert all(np.max(np.abs(g)) > 0 for g in grads)
    ref_dx, ref_grads, ref_out = torch_reference(model, x, G, monkeypatch=monkeypatch, mask=mask)
    assert bits(out, ref_out.reshape(np.shape(out))) >= 40
    assert bits(dx, ref_dx) >= 30, bits(dx, ref_dx)
    for g, r in zip(grads, ref_grads):
        assert bits(g, r) >= 30, (bits(g, r), g.shape)
    model[1].per_sequence = False  # the dense form: the same function, so the same gradients
    out_d, dx_d, grads_d, packed_d = input_and_weight_grads(model, x, G, mask)
    assert not packed_d
    assert bits(out, out_d) >= 40 and bits(dx, dx_d) >= 40
    for g, r in zip(grads, grads_d):
        assert bits(g, r) >= 40, (bits(g, r), g.shape)
    print(kind, "dX", bits(dx, ref_dx), "vs torch", [round(bits(g, r), 1) for g, r in zip(grads, ref_grads)], "vs dense", [round(bits(g, r), 1) for g, r in zip(grads, grads_d)])
