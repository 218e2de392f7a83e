"""hetensor.torch: the HE-friendly layers in exact arithmetic, against direct formulas."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hetensor import torch as htt  # noqa: E402


def bits(a, b):
    err = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    return math.inf if err == 0 else -math.log2(err / max(1.0, float(np.max(np.abs(np.asarray(b))))))


def test_gaussian_kernel_attention_matches_the_formula():
    torch.manual_seed(0)
    att = htt.GaussianKernelAttention(8, 2).double()
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 0]])
    got = att(x, mask).detach().numpy()
    q, k, v = (m(x).detach().numpy() for m in (att.q, att.k, att.v))
    ref = np.zeros((3, 5, 8))
    for b in range(3):
        for h in range(2):
            c = slice(4 * h, 4 * h + 4)
            for i in range(5):
                for j in range(5):
                    w = math.exp(-np.sum((q[b, i, c] - k[b, j, c]) ** 2) / (2 * math.sqrt(4))) * float(mask[b, j])
                    ref[b, i, c] += w * v[b, j, c]
    ref = ref @ att.o.weight.detach().numpy().T + att.o.bias.detach().numpy()
    assert bits(got, ref) > 40


def test_softmax_attention_matches_torch_sdpa():
    torch.manual_seed(1)
    att = htt.SoftmaxAttention(8, 2).double()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    got = att(x, mask).detach().numpy()
    heads = lambda t: t.reshape(2, 6, 2, 4).transpose(1, 2)
    q, k, v = heads(att.q(x)), heads(att.k(x)), heads(att.v(x))
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask.bool()[:, None, None, :])
    ref = att.o(o.transpose(1, 2).reshape(2, 6, 8)).detach().numpy()
    assert bits(got, ref) > 40


def test_lora_linear_starts_as_its_base_and_trains_only_the_adapters():
    torch.manual_seed(2)
    lin = htt.LoRALinear(6, 4, rank=2, alpha=4.0).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    assert torch.equal(lin(x), lin.base(x))
    with torch.no_grad():
        lin.lora_B.normal_()
    ref = lin.base(x) + 2.0 * (x @ lin.lora_A.T) @ lin.lora_B.T
    assert bits(lin(x).detach(), ref.detach()) > 45
    trainable = {n for n, p in lin.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B"}


def test_layernorm_twin_equals_torch_layernorm():
    torch.manual_seed(3)
    ln, ref = htt.LayerNorm(7).double(), torch.nn.LayerNorm(7).double()
    with torch.no_grad():
        ln.weight.normal_(), ln.bias.normal_()
        ref.weight.copy_(ln.weight), ref.bias.copy_(ln.bias)
    x = 3 * torch.randn(4, 7, dtype=torch.float64) + 1
    assert bits(ln(x).detach(), ref(x).detach()) > 45


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        htt.GaussianKernelAttention(10, 3)
    with pytest.raises(ValueError, match="attention"):
        htt.TransformerEncoderLayer(8, 2, 16, attention="linear")
    att = htt.GaussianKernelAttention(8, 2).double()
    with pytest.raises(ValueError, match="padding mask"):
        att(torch.zeros(2, 3, 8, dtype=torch.float64), torch.ones(3, 2))
