"""HE-friendly transformer layers as ``torch.nn.Module``s, in exact arithmetic.

The twins of the :mod:`hetensor.nn` layers: pre-train and fine-tune here with
autograd, then convert with :func:`hetensor.nn.from_torch`. Each layer avoids
what CKKS cannot do cheaply:

- :class:`GaussianKernelAttention`: scores exp(-||q_i - k_j||^2 / (2 sqrt(d)))
  with no row normalisation (no division, no maximum); padded keys get weight 0
  (the exp of a -inf mask).
- :class:`LoRALinear`: a frozen base weight plus a low-rank adapter B A, the
  only part that is trained (and, under encryption, the only encrypted weight).
- :class:`LayerNorm`: the usual formula; under encryption its inverse square
  root is a polynomial + Newton steps on the calibrated range of the variance.

Activations are the plain ``torch.nn.ReLU / GELU / Tanh`` (polynomials under
encryption, on the calibrated input range).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

__all__ = [
    "LoRALinear",
    "GaussianKernelAttention",
    "SoftmaxAttention",
    "LayerNorm",
    "FeedForward",
    "TransformerEncoderLayer",
    "MeanPool",
    "key_mask",
    "TransformerClassifier",
]


def key_mask(mask: Optional[torch.Tensor], batch: int, seq: int, device=None) -> Optional[torch.Tensor]:
    """(batch, 1, 1, seq) float mask of the real keys (1) and padding (0), or None."""
    if mask is None:
        return None
    m = torch.as_tensor(mask, device=device)
    if m.shape != (batch, seq):
        raise ValueError(f"the padding mask must have shape (batch, seq) = {(batch, seq)}, not {tuple(m.shape)}")
    return m.to(torch.get_default_dtype() if not m.is_floating_point() else m.dtype).reshape(batch, 1, 1, seq)


class LoRALinear(nn.Module):
    """y = x W^T + b + (alpha / rank) (x A^T) B^T, with W, b frozen.

    ``A`` (rank x in) starts Kaiming-uniform and ``B`` (out x rank) at zero, so
    a fresh adapter leaves the base layer unchanged. ``rank=0`` is a plain
    (trainable) linear layer.
    """

    def __init__(self, in_features: int, out_features: int, rank: int = 2, alpha: float = 1.0,
                 bias: bool = True, freeze_base: bool = True) -> None:
        super().__init__()
        if rank < 0 or int(rank) != rank:
            raise ValueError(f"rank must be an integer >= 0, not {rank!r}")
        self.in_features, self.out_features, self.rank, self.alpha = int(in_features), int(out_features), int(rank), float(alpha)
        self.base = nn.Linear(in_features, out_features, bias=bias)
        if rank:
            self.lora_A = nn.Parameter(torch.empty(rank, in_features))
            self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        else:
            self.register_parameter("lora_A", None)
            self.register_parameter("lora_B", None)
        if freeze_base and rank:
            self.freeze_base()

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank if self.rank else 0.0

    def freeze_base(self, frozen: bool = True) -> None:
        """Stop (or restart) training the base weight and bias."""
        for p in self.base.parameters():
            p.requires_grad_(not frozen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.rank:
            y = y + self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)
        return y

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}, alpha={self.alpha:g}"


def _proj(d_in: int, d_out: int, rank: int, alpha: float, bias: bool) -> nn.Module:
    return LoRALinear(d_in, d_out, rank, alpha, bias) if rank else nn.Linear(d_in, d_out, bias=bias)


class _Attention(nn.Module):
    """Shared projections of the two attentions (q, k, v optionally LoRA, o plain)."""

    def __init__(self, d_model: int, n_heads: int, lora_rank: int = 0, lora_alpha: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.d_model, self.n_heads, self.head_dim = int(d_model), int(n_heads), d_model // n_heads
        self.lora_rank = int(lora_rank)
        self.q = _proj(d_model, d_model, lora_rank, lora_alpha, bias)
        self.k = _proj(d_model, d_model, lora_rank, lora_alpha, bias)
        self.v = _proj(d_model, d_model, lora_rank, lora_alpha, bias)
        self.o = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, s, _ = t.shape
        return t.reshape(b, s, self.n_heads, self.head_dim).transpose(1, 2)  # (b, h, s, dh)

    def weights(self, q: torch.Tensor, k: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        e = self.weights(q, k, key_mask(mask, b, s, x.device))
        out = (e @ v).transpose(1, 2).reshape(b, s, self.d_model)
        return self.o(out)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, lora_rank={self.lora_rank}"


class GaussianKernelAttention(_Attention):
    """Multi-head attention with Gaussian-kernel weights and no normalisation:
    E_ij = exp(-||q_i - k_j||^2 / (2 sqrt(head_dim))) * mask_j, out = E V.

    ``mask`` (batch, seq): 1 for real tokens, 0 for padding (the exp of a -inf
    score, so padded keys get weight exactly 0).
    """

    def weights(self, q, k, mask):
        d2 = (q * q).sum(-1, keepdim=True) + (k * k).sum(-1).unsqueeze(-2) - 2.0 * (q @ k.transpose(-1, -2))
        e = torch.exp(-d2 / (2.0 * math.sqrt(self.head_dim)))
        return e if mask is None else e * mask


class SoftmaxAttention(_Attention):
    """The usual scaled dot-product attention with softmax (the baseline that
    Gaussian-kernel attention replaces); padded keys get weight 0."""

    def weights(self, q, k, mask):
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            s = s.masked_fill(mask == 0, float("-inf"))
        return torch.softmax(s, dim=-1)


class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension: (x - mean) / sqrt(var + eps) * weight + bias
    (biased variance, as ``torch.nn.LayerNorm``); the encrypted twin approximates
    the inverse square root on the calibrated range of var + eps."""

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.d_model, self.eps = int(d_model), float(eps)
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x - x.mean(-1, keepdim=True)
        var = (c * c).mean(-1, keepdim=True)
        return c * torch.rsqrt(var + self.eps) * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps:g}"


def _activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
    if name not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, not {name!r}")
    return acts[name]()


class FeedForward(nn.Module):
    """Linear(d_model, d_ff) -> activation -> Linear(d_ff, d_model)."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.act = _activation(activation)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerEncoderLayer(nn.Module):
    """Pre-LN encoder layer: x + attn(ln1(x)), then x + ffn(ln2(x)).

    ``attention``: ``"gk"`` (:class:`GaussianKernelAttention`) or ``"softmax"``;
    ``lora_rank > 0`` puts LoRA adapters on the q, k, v projections.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, lora_rank: int = 0, lora_alpha: float = 1.0,
                 attention: str = "gk", activation: str = "relu", eps: float = 1e-5) -> None:
        super().__init__()
        kinds = {"gk": GaussianKernelAttention, "softmax": SoftmaxAttention}
        if attention not in kinds:
            raise ValueError(f"attention must be 'gk' or 'softmax', not {attention!r}")
        self.ln1 = LayerNorm(d_model, eps)
        self.attn = kinds[attention](d_model, n_heads, lora_rank, lora_alpha)
        self.ln2 = LayerNorm(d_model, eps)
        self.ffn = FeedForward(d_model, d_ff, activation)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.ffn(self.ln2(x))


class MeanPool(nn.Module):
    """Mean over the tokens of each sequence, (batch, seq, d) -> (batch, d); padded
    tokens are left out when a mask is given."""

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mask is None:
            return x.mean(1)
        m = torch.as_tensor(mask, dtype=x.dtype, device=x.device).unsqueeze(-1)
        return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class TransformerClassifier(nn.Module):
    """embed (Linear) + learned positions -> encoder layers -> LayerNorm -> mean pool
    -> Linear head: (batch, seq_len, d_in) -> (batch, n_classes) logits."""

    def __init__(self, d_in: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, n_classes: int, seq_len: int,
                 lora_rank: int = 0, lora_alpha: float = 1.0, attention: str = "gk", activation: str = "relu",
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.seq_len = int(seq_len)
        self.embed = nn.Linear(d_in, d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        self.layers = nn.ModuleList([TransformerEncoderLayer(d_model, n_heads, d_ff, lora_rank, lora_alpha, attention,
                                                             activation, eps) for _ in range(n_layers)])
        self.norm = LayerNorm(d_model, eps)
        self.pool = MeanPool()
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.embed(x) + self.pos
        for layer in self.layers:
            x = layer(x, mask)
        return self.head(self.pool(self.norm(x), mask))

    def lora_parameters(self):
        """The adapters' parameters (for fine-tuning only them)."""
        return [p for n, p in self.named_parameters() if "lora_" in n]
