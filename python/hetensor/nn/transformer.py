"""Transformer blocks built from the layers: feed-forward, pre-LN encoder layer,
pooling, and a small sequence classifier (the twin of
``hetensor.torch.TransformerClassifier``)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .activation import GELU, ReLU, Tanh
from .attention import GaussianKernelAttention, SoftmaxAttention
from .linear import Linear
from .module import Module, Sequential
from .norm import LayerNorm

_ACTS = {"relu": ReLU, "gelu": GELU, "tanh": Tanh}


def _activation(name: str) -> Module:
    if name not in _ACTS:
        raise ValueError(f"activation must be one of {sorted(_ACTS)}, not {name!r}")
    return _ACTS[name]()


class FeedForward(Module):
    """fc2(act(fc1(x))): two CPMMs and a polynomial activation."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", bias: bool = True, *,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        g = rng if rng is not None else np.random.default_rng()
        self.fc1 = Linear(d_model, d_ff, bias, rng=g)
        self.act = _activation(activation)
        self.fc2 = Linear(d_ff, d_model, bias, rng=g)

    def forward(self, x: Any, run: Any) -> Any:
        return self.fc2(self.act(self.fc1(x, run), run), run)


class TransformerEncoderLayer(Module):
    """Pre-LN encoder layer: x + attn(ln1(x)), then x + ffn(ln2(x)).

    ``attention``: ``"gk"`` (Gaussian kernel) or ``"softmax"``; ``lora_rank > 0``
    puts LoRA adapters on q, k, v."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, lora_rank: int = 0, lora_alpha: float = 1.0,
                 attention: str = "gk", activation: str = "relu", eps: float = 1e-5, *,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        kinds = {"gk": GaussianKernelAttention, "softmax": SoftmaxAttention}
        if attention not in kinds:
            raise ValueError(f"attention must be 'gk' or 'softmax', not {attention!r}")
        g = rng if rng is not None else np.random.default_rng()
        self.ln1 = LayerNorm(d_model, eps)
        self.attn = kinds[attention](d_model, n_heads, lora_rank, lora_alpha, rng=g)
        self.ln2 = LayerNorm(d_model, eps)
        self.ffn = FeedForward(d_model, d_ff, activation, rng=g)

    def forward(self, x: Any, run: Any) -> Any:
        x = run.add(x, self.attn(self.ln1(x, run), run), self, "attn_residual")
        return run.add(x, self.ffn(self.ln2(x, run), run), self, "ffn_residual")


class MeanPool(Module):
    """(batch * seq, d) -> (batch, d): the mean over each sequence's real tokens
    (a plaintext (batch, batch * seq) matrix on the left: one level)."""

    def forward(self, x: Any, run: Any) -> Any:
        p = run.pool_matrix()
        x = run.ready(x, 1, self, "input")
        return run.matmul(run.matrix(self, ("pool", p.shape, hash(p.tobytes())), lambda: p), x)


class TransformerClassifier(Module):
    """embed (Linear) + learned positions -> encoder layers -> LayerNorm -> mean
    pool -> Linear head: (batch, seq, d_in) -> (batch, n_classes)."""

    def __init__(self, d_in: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, n_classes: int, seq_len: int,
                 lora_rank: int = 0, lora_alpha: float = 1.0, attention: str = "gk", activation: str = "relu",
                 eps: float = 1e-5, *, rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        g = rng if rng is not None else np.random.default_rng()
        self.seq_len = int(seq_len)
        self.embed = Linear(d_in, d_model, rng=g)
        self.register_parameter("pos", g.normal(0.0, 0.02, (seq_len, d_model)))
        self.layers = Sequential(*[TransformerEncoderLayer(d_model, n_heads, d_ff, lora_rank, lora_alpha, attention,
                                                        activation, eps, rng=g) for _ in range(n_layers)])
        self.norm = LayerNorm(d_model, eps)
        self.pool = MeanPool()
        self.head = Linear(d_model, n_classes, rng=g)

    def extra_repr(self) -> str:
        return f"seq_len={self.seq_len}"

    def forward(self, x: Any, run: Any) -> Any:
        if run.seq_len != self.seq_len:
            raise ValueError(f"the model was built for sequences of {self.seq_len} tokens, the input has {run.seq_len}")
        x = self.embed(x, run) + np.tile(self.pos, (run.batch, 1))
        x = self.layers(x, run)
        return self.head(self.pool(self.norm(x, run), run), run)
