"""from_torch: a hetensor.nn model from a torch model built of supported layers.

Supported: ``torch.nn.Linear``, ``LayerNorm`` (1-D), ``ReLU``, ``GELU`` (erf
form), ``Tanh``, ``Sequential``, and the twins of :mod:`hetensor.torch`.
Anything else raises ``TypeError`` naming the module and its path. Weights are
copied as float64; with ``calibration`` inputs the model is calibrated (see
:meth:`hetensor.nn.Module.calibrate`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np

from .activation import GELU, ReLU, Tanh
from .attention import GaussianKernelAttention, SoftmaxAttention
from .linear import Linear, LoRALinear
from .module import Module, Sequential
from .norm import LayerNorm
from .transformer import FeedForward, MeanPool, TransformerClassifier, TransformerEncoderLayer


def _np(t: Any) -> Optional[np.ndarray]:
    return None if t is None else t.detach().cpu().double().numpy().copy()


def _linear(m: Any, path: str) -> Linear:
    return Linear(m.in_features, m.out_features, m.bias is not None, weight=_np(m.weight), bias_value=_np(m.bias))


def _lora(m: Any, path: str) -> Module:
    if not m.rank:
        return _linear(m.base, path)
    out = LoRALinear(m.in_features, m.out_features, m.rank, m.alpha, m.base.bias is not None)
    out.base = _linear(m.base, path + ".base")
    out.register_parameter("lora_A", _np(m.lora_A), trainable=True)
    out.register_parameter("lora_B", _np(m.lora_B), trainable=True)
    return out


def _layernorm(m: Any, path: str) -> LayerNorm:
    shape = tuple(getattr(m, "normalized_shape", (getattr(m, "d_model", 0),)))
    if len(shape) != 1:
        raise TypeError(f"{path}: LayerNorm over {shape} is not supported (only the last dimension)")
    d = shape[0]
    w = _np(getattr(m, "weight", None))
    b = _np(getattr(m, "bias", None))
    return LayerNorm(d, float(m.eps), weight=np.ones(d) if w is None else w, bias=np.zeros(d) if b is None else b)


def _attention(cls: type) -> Callable[[Any, str], Module]:
    def conv(m: Any, path: str) -> Module:
        out = cls(m.d_model, m.n_heads, 0)
        out.lora_rank = m.lora_rank
        for name in ("q", "k", "v", "o"):
            setattr(out, name, convert(getattr(m, name), f"{path}.{name}"))
        return out

    return conv


def _gelu(m: Any, path: str) -> GELU:
    if getattr(m, "approximate", "none") != "none":
        raise TypeError(f"{path}: GELU(approximate={m.approximate!r}) is not supported; use the erf form GELU()")
    return GELU()


def _ffn(m: Any, path: str) -> FeedForward:
    out = FeedForward(m.fc1.in_features, m.fc1.out_features)
    out.fc1, out.act, out.fc2 = convert(m.fc1, path + ".fc1"), convert(m.act, path + ".act"), convert(m.fc2, path + ".fc2")
    return out


def _encoder(m: Any, path: str) -> TransformerEncoderLayer:
    out = TransformerEncoderLayer(m.ln1.d_model, m.attn.n_heads, m.ffn.fc1.out_features)
    for name in ("ln1", "attn", "ln2", "ffn"):
        setattr(out, name, convert(getattr(m, name), f"{path}.{name}"))
    return out


def _classifier(m: Any, path: str) -> TransformerClassifier:
    d_in, d_model = m.embed.in_features, m.embed.out_features
    out = TransformerClassifier(d_in, d_model, 1, 1, 0, m.head.out_features, m.seq_len)
    out.embed = convert(m.embed, path + ".embed")
    out.register_parameter("pos", _np(m.pos))
    out.layers = Sequential(*[convert(layer, f"{path}.layers.{i}") for i, layer in enumerate(m.layers)])
    out.norm, out.pool, out.head = convert(m.norm, path + ".norm"), MeanPool(), convert(m.head, path + ".head")
    return out


def _sequential(m: Any, path: str) -> Sequential:
    return Sequential(*[convert(c, f"{path}.{name}" if path else name) for name, c in m.named_children()])


def _table() -> Dict[type, Callable[[Any, str], Module]]:
    import torch.nn as tnn

    from .. import torch as twins

    return {
        tnn.Linear: _linear, tnn.LayerNorm: _layernorm, tnn.ReLU: lambda m, p: ReLU(), tnn.GELU: _gelu,
        tnn.Tanh: lambda m, p: Tanh(), tnn.Sequential: _sequential,
        twins.LoRALinear: _lora, twins.LayerNorm: _layernorm,
        twins.GaussianKernelAttention: _attention(GaussianKernelAttention),
        twins.SoftmaxAttention: _attention(SoftmaxAttention),
        twins.FeedForward: _ffn, twins.TransformerEncoderLayer: _encoder, twins.MeanPool: lambda m, p: MeanPool(),
        twins.TransformerClassifier: _classifier,
    }


def convert(m: Any, path: str = "") -> Module:
    """The hetensor.nn twin of one torch module (recursively)."""
    conv = _table().get(type(m))
    if conv is None:
        where = f" at '{path}'" if path else ""
        raise TypeError(
            f"cannot convert {type(m).__module__}.{type(m).__name__}{where}: hetensor.nn supports torch.nn.Linear, "
            f"LayerNorm, ReLU, GELU, Tanh, Sequential and the layers of hetensor.torch")
    return conv(m, path)


def from_torch(torch_model: Any, calibration: Any = None, *, mask: Any = None, margin: Optional[float] = None,
               max_depth: Optional[int] = None, batch_size: int = 256) -> Module:
    """Convert ``torch_model`` and, given ``calibration`` inputs (numpy or torch,
    (batch, seq, features) or (rows, features)), calibrate the approximation
    ranges on them (see :meth:`hetensor.nn.Module.calibrate`)."""
    model = convert(torch_model)
    if calibration is not None:
        kw = {k: v for k, v in dict(margin=margin, max_depth=max_depth).items() if v is not None}
        model.calibrate(calibration, mask=mask, batch_size=batch_size, **kw)
    return model
