"""Linear layers: a frozen plaintext weight (CPMM, one level) and LoRA adapters.

Weights follow torch's convention (``weight`` is out x in, ``y = x W^T + b``),
so state dicts carry over from torch. In encrypted mode the weight is encoded
once per context (:class:`hetensor.PlainMatrix`) and reused by every forward.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .module import Module


def _col_mask(n: int, cols: Optional[slice]) -> Optional[np.ndarray]:
    if cols is None:
        return None
    m = np.zeros(n)
    m[cols] = 1.0
    return m


class Linear(Module):
    """y = x W^T + b with a plaintext W (out x in) and b: one CPMM, one level."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 weight: Any = None, bias_value: Any = None, rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        if weight is None:
            g = rng if rng is not None else np.random.default_rng()
            bound = 1.0 / math.sqrt(in_features)
            weight = g.uniform(-bound, bound, (out_features, in_features))
            if bias and bias_value is None:
                bias_value = g.uniform(-bound, bound, out_features)
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != (out_features, in_features):
            raise ValueError(f"weight must be (out, in) = {(out_features, in_features)}, not {weight.shape}")
        self.register_parameter("weight", weight)
        self.register_parameter("bias", None if not bias else np.asarray(bias_value, dtype=np.float64).reshape(out_features))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def project(self, x: Any, run: Any, cols: Optional[slice] = None) -> Any:
        """x W^T + b, keeping only the output columns ``cols`` (the others are 0)."""
        m = _col_mask(self.out_features, cols)
        w = self.weight.T if m is None else self.weight.T * m
        y = run.matmul(x, run.matrix(self, ("wT", _key(cols)), lambda: w))
        if self.bias is not None:
            y = y + (self.bias if m is None else self.bias * m)
        return y

    def forward(self, x: Any, run: Any) -> Any:
        x = run.ready(x, 1, self, "input")
        return self.project(x, run)


def _key(cols: Optional[slice]) -> Any:
    return None if cols is None else (cols.start, cols.stop)


class LoRALinear(Module):
    """y = x W^T + b + (alpha / rank) (x A^T) B^T: frozen plaintext W, b (child
    ``base``) and adapters ``lora_A`` (rank x in), ``lora_B`` (out x rank).

    The adapters are numpy arrays, or CipherTensors after
    :meth:`encrypt_adapters` (the server then never sees them). With plaintext
    adapters the whole layer costs one CPMM level more than the base (x A^T,
    then B^T); encrypted ones are two encrypted products (the thin LoRA
    products of :mod:`hetensor.linalg`).
    """

    def __init__(self, in_features: int, out_features: int, rank: int = 2, alpha: float = 1.0, bias: bool = True, *,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        if int(rank) != rank or rank < 1:
            raise ValueError(f"rank must be an integer >= 1, not {rank!r}")
        g = rng if rng is not None else np.random.default_rng()
        self.in_features, self.out_features, self.rank, self.alpha = int(in_features), int(out_features), int(rank), float(alpha)
        self.base = Linear(in_features, out_features, bias, rng=g)
        bound = 1.0 / math.sqrt(in_features)
        self.register_parameter("lora_A", g.uniform(-bound, bound, (rank, in_features)), trainable=True)
        self.register_parameter("lora_B", np.zeros((out_features, rank)), trainable=True)

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def extra_repr(self) -> str:
        enc = ", encrypted adapters" if self.adapters_encrypted else ""
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}, alpha={self.alpha:g}{enc}"

    @property
    def adapters_encrypted(self) -> bool:
        return not isinstance(self.lora_A, np.ndarray)

    def encrypt_adapters(self, ctx: Any) -> None:
        """Replace A and B by encryptions of A^T (in x rank) and (alpha / rank) B^T (rank x out)
        under ``ctx``: the products then need no transpose and no scaling."""
        if self.adapters_encrypted:
            return
        a = ctx.encrypt(self.lora_A.T, layout="matrix")                     # in x rank
        b = ctx.encrypt(self.scaling * self.lora_B.T, layout="matrix")      # rank x out
        self.register_parameter("lora_A", a, trainable=True)
        self.register_parameter("lora_B", b, trainable=True)

    def project(self, x: Any, run: Any, cols: Optional[slice] = None) -> Any:
        """The layer's output, keeping only the output columns ``cols`` (the others are 0)."""
        m = _col_mask(self.out_features, cols)
        if not self.adapters_encrypted:
            # one product: x [W^T | ...] is not cheaper than x W^T + (x A^T) B^T for rank << in,
            # so the adapter runs beside the base (two levels, the base one)
            xa = run.matmul(x, run.matrix(self, "aT", lambda: self.lora_A.T))
            xa = run.ready(xa, 1, self, "xa")
            run.save(self, "proj", x=x, xa=xa)
            bt = self.scaling * self.lora_B.T
            bt = bt if m is None else bt * m
            delta = run.matmul(xa, run.matrix(self, ("bT", _key(cols)), lambda: bt))
        else:
            if run.mode not in ("encrypted", "plan"):
                raise ValueError("the adapters are encrypted: run the model on encrypted inputs, or keep plaintext "
                                 "adapters for plain and simulate mode")
            xa = run.matmul(x, self.lora_A)
            # the product's route (and so its levels) depends on the layouts: ask the planner
            xa = run.ready(xa, run.levels_of_matmul(xa, self.lora_B) + (m is not None), self, "xa")
            run.save(self, "proj", x=x, xa=xa)
            delta = run.matmul(xa, self.lora_B)
            if m is not None:
                delta = delta * m
            # the two products leave different packings: the sum may change one's layout (a level)
            return run.add(self.base.project(x, run, cols), delta, self, "sum")
        base = self.base.project(x, run, cols)
        if run.calibrating:  # the ranges the encrypted adapters' sum refreshes with
            run.record(self, "sum.a", base)
            run.record(self, "sum.b", delta)
        return base + delta

    def forward(self, x: Any, run: Any) -> Any:
        x = run.ready(x, 3 if self.adapters_encrypted else 2, self, "input")
        return self.project(x, run)
