"""Multi-head attention over a batch of sequences packed as one (n, d) token matrix.

Heads without slicing: head h's q, k, v are the projections with every column
outside the head set to zero (folded into the plaintext weights), so
q_h k_h^T sums over that head's columns only and E_h v_h lands in its own
columns; the heads' outputs add up to the concatenation.

Gaussian kernel (per head, n tokens, head dimension dh, c = 1 / (2 sqrt(dh))):

    Z = -c (q*q) 1 - c 1 (k*k)^T + 2c q k^T      = -c ||q_i - k_j||^2   (two CPMMs, one CCMM)
    E = exp(Z) * M                               M: same sequence and a real key (0/1)
    out_h = E v_h

exp runs as exp(Z / 2^k) by a polynomial and k squarings (fits.exp_steps) on
the calibrated range of Z. No row normalisation, as in the paper. The
softmax baseline normalises by an approximate reciprocal and subtracts no
maximum (its scores are calibrated instead).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from . import fits
from .linear import Linear, LoRALinear
from .module import Module
from .run import DEFAULT_MARGIN


class _Attention(Module):
    def __init__(self, d_model: int, n_heads: int, lora_rank: int = 0, lora_alpha: float = 1.0, bias: bool = True, *,
                 rng: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        g = rng if rng is not None else np.random.default_rng()
        self.d_model, self.n_heads, self.head_dim, self.lora_rank = int(d_model), int(n_heads), d_model // n_heads, int(lora_rank)
        self.max_depth = fits.DEFAULT_MAX_DEPTH
        self.margin = DEFAULT_MARGIN
        make = (lambda: LoRALinear(d_model, d_model, lora_rank, lora_alpha, bias, rng=g)) if lora_rank else \
            (lambda: Linear(d_model, d_model, bias, rng=g))
        self.q, self.k, self.v = make(), make(), make()
        self.o = Linear(d_model, d_model, bias, rng=g)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, lora_rank={self.lora_rank}"

    def forward(self, x: Any, run: Any) -> Any:
        need = 4 if any(isinstance(m, LoRALinear) and m.adapters_encrypted for m in (self.q, self.k, self.v)) else 3
        x = run.ready(x, need, self, "input")
        run.save(self, "input", x=x)
        out = None
        for h in range(self.n_heads):
            cols = slice(h * self.head_dim, (h + 1) * self.head_dim)
            q, k, v = (p.project(x, run, cols) for p in (self.q, self.k, self.v))
            e = self.weights(q, k, run, h)
            e, v = run.ready_many([(e, 3, "weights"), (v, 3, "values")], self)
            run.save(self, h, e=e, v=v)
            o = run.matmul(e, v)
            out = o if out is None else run.add(out, o, self, "heads")
        out = run.ready(out, 1, self, "heads")
        return self.o.project(out, run)

    def weights(self, q: Any, k: Any, run: Any, head: int) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class GaussianKernelAttention(_Attention):
    """E_ij = exp(-||q_i - k_j||^2 / (2 sqrt(head_dim))) for real keys of the same
    sequence, 0 otherwise; out = E v, then the output projection."""

    def exp_steps(self) -> tuple:
        r = self.ranges.get("scores")
        if r is None:
            raise ValueError("GaussianKernelAttention is not calibrated: the range of its scores is unknown; "
                             "calibrate the model (model.calibrate(inputs) or from_torch(..., calibration=inputs))")
        lo = min(float(r[0]), -1.0) * (1.0 + self.margin)
        lo = -float(2.0 ** math.ceil(math.log2(-lo)))  # a power of two: fewer distinct fits
        return fits.exp_steps(lo, 0.25, int(self.max_depth))

    def weights(self, q: Any, k: Any, run: Any, head: int) -> Any:
        n, c = run.n_tokens, 1.0 / (2.0 * math.sqrt(self.head_dim))
        q, k = run.ready_many([(q, 3, "q"), (k, 3, "k")], self)
        run.save(self, head, q=q, k=k)
        qq = run.matmul(q * q, run.matrix(self, ("rows", n), lambda: np.full((self.d_model, n), -c)))
        kk = run.matmul(run.matrix(self, ("cols", n), lambda: np.full((n, self.d_model), -c)), (k * k).T)
        qk = run.matmul(q, run.ready(k * (2.0 * c), 3, self, "k2c").T)
        z = run.add(run.add(qq, kk, self, "norms"), qk, self, "scores")
        if run.calibrating:
            run.record(self, "scores", z)
            return type(z)(np.exp(z.numpy()) * run.attention_mask())
        p, squarings = self.exp_steps()
        z = run.ready(z, p.depth, self, "scores")
        e = z.polyval(p)
        chain = []
        for _ in range(squarings):  # exp(z / 2^j) <= exp(1/4) < 1.5 at every step
            e = run.ready(e, 1, self, "exp", bound=1.5)
            chain.append(e)
            e = (e * e).assume_bound(1.5)
        e = run.ready(e, 1, self, "exp", bound=1.5)
        run.save(self, head, z=z, chain=chain)  # the backward differentiates p(z)^(2^k) exactly
        return e * run.attention_mask()  # a plaintext in e's own packing


class SoftmaxAttention(_Attention):
    """softmax(q k^T / sqrt(head_dim)) over the real keys of each sequence: exp by a
    polynomial on the calibrated score range (no maximum subtracted), the row sums
    by a product with a ones matrix, their reciprocal by a polynomial and Newton steps."""

    def exp_steps(self) -> tuple:
        r = self.ranges.get("scores")
        if r is None:
            raise ValueError("SoftmaxAttention is not calibrated; calibrate the model first")
        lo, hi = fits.widen(float(r[0]), float(r[1]), self.margin)
        return fits.exp_steps(lo, hi, int(self.max_depth))

    def reciprocal(self) -> tuple:
        r = self.ranges.get("sums")
        if r is None:
            raise ValueError("SoftmaxAttention is not calibrated; calibrate the model first")
        lo, hi = float(r[0]) / (1.0 + 4 * self.margin), float(r[1]) * (1.0 + self.margin)
        return fits.reciprocal_steps(lo / hi, int(self.max_depth)), hi

    def weights(self, q: Any, k: Any, run: Any, head: int) -> Any:
        n = run.n_tokens
        q, k = run.ready_many([(q, 3, "q"), (k, 3, "k")], self)
        z = run.matmul(q, run.ready(k * (1.0 / math.sqrt(self.head_dim)), 3, self, "k_scaled").T)
        mask = run.attention_mask()
        ones = np.ones((n, n))
        if run.calibrating:
            run.record(self, "scores", z)
            e = np.exp(z.numpy()) * mask
            s = e @ ones
            run.record(self, "sums", type(z)(s[mask > 0]))
            return type(z)(e / s)
        p, squarings = self.exp_steps()
        z = run.ready(z, p.depth, self, "scores")
        e = z.polyval(p)
        ebound = 1.05 * math.exp(max(p.b, 0.0))  # exp(z / 2^j) <= exp(b) at every squaring
        for _ in range(squarings):
            e = run.ready(e, 1, self, "exp", bound=ebound)
            e = (e * e).assume_bound(ebound)
        e = run.ready(e, 2, self, "exp", bound=ebound)
        e = e * mask
        (rp, steps), hi = self.reciprocal()
        s = run.matmul(e, run.matrix(self, ("ones", n, hi), lambda: ones / hi))  # row sums / hi, in every column
        s = run.ready(s, rp.depth, self, "sums_scaled", bound=1.0)
        y = s.polyval(rp)
        for _ in range(steps):  # y (2 - s y): two levels on y, and s y one below s
            y, s = run.ready_many([(y, 2, "newton", 1.05 / rp.a), (s, 2, "sums_scaled", 1.0)], self)
            y = (y * (2.0 - s * y)).assume_bound(1.05 / rp.a)  # Newton from below: y in (0, 1/s]
        y, e = run.ready_many([(y, 2, "recip", 1.05 / rp.a), (e, 1, "exp_masked", ebound)], self)
        return e * (y * (1.0 / hi))
