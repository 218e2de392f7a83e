"""Full fine-tuning of the attention projections: the paper's baseline against LoRA.

:class:`TrainableLinear` is a linear layer whose whole weight trains: numpy in
plain and simulate mode, or (after :meth:`TrainableLinear.encrypt_weights`)
an encryption of ``W^T`` (in x out), so its forward ``x W^T`` is an encrypted
x encrypted product (CCMM) and its backward two more (``dW^T = x^T dY``,
``dX = dY W``); AdamW keeps encrypted moments of the whole matrix.
:func:`full_qkv` turns the q, k, v projections of every attention layer of a
model into such layers (with LoRA adapters merged into the weight), so the
same model fine-tunes either way. The bias stays frozen plaintext.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .attention import GaussianKernelAttention, SoftmaxAttention
from .linear import Linear, LoRALinear
from .module import Module


class TrainableLinear(Module):
    """``y = x W^T + b`` with W (out x in) trainable, b frozen.

    Encrypted (:meth:`encrypt_weights`), ``weight`` holds an encryption of
    ``W^T`` and its gradient comes in that stored form (``Parameter.scale`` is 1).
    The forward costs the levels of one CCMM from its input."""

    def __init__(self, weight: Any, bias: Any = None) -> None:
        super().__init__()
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"weight must be a 2-d (out, in) array, not shape {w.shape}")
        self.out_features, self.in_features = (int(s) for s in w.shape)
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float64).reshape(-1)
            if bias.shape != (self.out_features,):
                raise ValueError(f"bias must have {self.out_features} entries, not {bias.shape[0]}")
        self.register_parameter("weight", w, trainable=True)
        self.register_parameter("bias", bias)

    def extra_repr(self) -> str:
        enc = ", encrypted weight" if self.weights_encrypted else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, trainable{enc}"

    @property
    def weights_encrypted(self) -> bool:
        return not isinstance(self.weight, np.ndarray) and not _is_torch(self.weight)

    def encrypt_weights(self, ctx: Any) -> None:
        """Replace W by an encryption of W^T (in x out) under ``ctx``."""
        if not self.weights_encrypted:
            self.register_parameter("weight", ctx.encrypt(self.weight.T, layout="matrix"), trainable=True)

    def project(self, x: Any, run: Any, cols: Optional[slice] = None) -> Any:
        """The layer's output (every column: ``cols`` is for the frozen layers' head slicing)."""
        if cols is not None:
            raise ValueError("TrainableLinear.project computes every output column (cols=None)")
        if self.weights_encrypted:
            if run.mode not in ("encrypted", "plan"):
                raise ValueError("the weight is encrypted: run the model on encrypted inputs, or keep it plaintext "
                                 "for plain and simulate mode")
            # the product's route (and so its levels) depends on the layouts: ask the planner
            x = run.ready(x, run.levels_of_matmul(x, self.weight), self, "x")
            run.save(self, "proj", x=x)
            y = run.matmul(x, self.weight)
        else:
            x = run.ready(x, 1, self, "x")
            run.save(self, "proj", x=x)
            y = run.matmul(x, run.matrix(self, "wT", lambda: self.weight.T))
        if self.bias is not None:
            y = y + self.bias
        return y

    def forward(self, x: Any, run: Any) -> Any:
        return self.project(x, run)


def _is_torch(v: Any) -> bool:
    return type(v).__module__.startswith("torch")


def full_qkv(model: Module) -> Module:
    """Make the q, k, v projections of every attention layer of ``model`` fully trainable
    (:class:`TrainableLinear`; a LoRA projection's adapters are merged into its weight, its
    adapters dropped). The output projection and every other weight stay frozen. Call it
    after calibration (each new layer takes its attention's input range) and before
    :func:`hetensor.nn.calibrate_training`. Returns ``model``."""
    n = 0
    for m in list(model.modules()):
        if not isinstance(m, (GaussianKernelAttention, SoftmaxAttention)):
            continue
        for name in ("q", "k", "v"):
            p = getattr(m, name)
            if isinstance(p, TrainableLinear):
                continue
            if isinstance(p, LoRALinear):
                if p.adapters_encrypted:
                    raise ValueError("full_qkv needs plaintext adapters: call it before encrypt_adapters")
                w = p.base.weight + p.scaling * p.lora_B @ p.lora_A
                b = p.base.bias
            elif isinstance(p, Linear):
                w, b = p.weight, p.bias
            else:
                raise TypeError(f"cannot make {type(p).__name__} trainable")
            t = TrainableLinear(w, b)
            if "input" in m.ranges:  # its input is the attention's: the range a bootstrap of it scales by
                t.ranges["x"] = list(m.ranges["input"])
            setattr(m, name, t)
            n += 1
        m.lora_rank = 0
    if not n and not any(isinstance(m, TrainableLinear) for m in model.modules()):
        raise ValueError("the model has no attention layer (GaussianKernelAttention or SoftmaxAttention)")
    return model
