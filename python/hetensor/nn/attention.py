"""Multi-head attention over a batch of sequences packed as one (n, d) token matrix.

Per-sequence scores (a batch of several sequences, inference and training;
``per_sequence = True``, the default; one sequence keeps the dense form below, the
same matrix). With T tokens per sequence, H heads and c = 1 / (2 sqrt(dh)), token
i = b T + t is scored against the T tokens of its own sequence only, one column per
(offset o, head h):

    K_o = roll_rows(k, o, T)                 row i holds k of token b T + (t + o) mod T   (1 level)
    Z[:, o H + h] = -c sum_{head h} (q - K_o)^2   = (q - K_o)^2 @ M_o    (M_o: (d, T H), -c on head h)
    E = exp(Z) * mask                        mask: that neighbour is a real key
    out = sum_o (E @ B_o) * roll_rows(v, o, T)   (B_o: (T H, d) spreads column o H + h over head h)

So the score tensor is (n, T H) whatever the batch (the dense form below is
(n, n)), a whole test split shares one forward, and every product is with a
small plaintext matrix (CPMM). Heads need no masks: M_o sums each head's
columns into its own score column. The softmax baseline uses the same
layout (scores (q * K_o) @ M_o / sqrt(dh), row sums per head by one product).

The backward (nn/backward.py) transposes each step: a roll by o becomes a roll by -o,
a product with M_o or B_o one with its transpose; a training forward keeps the
differences q - K_o (GK) or q and K_o (softmax), the rolled values and spread weights.

Dense scores (one sequence, or ``per_sequence = False``). q, k, v are projected
once for all heads, and head h's q_h, k_h, v_h are those with every column outside
the head set to zero (a plaintext mask: one level, no rotation):

    Z = -c (q*q) 1 - c 1 (k*k)^T + 2c q k^T      = -c ||q_i - k_j||^2   (two CPMMs, one CCMM)
    E = exp(Z) * M                               M: same sequence and a real key (0/1)
    out_h = E v_h

exp runs as exp(Z / 2^k) by a polynomial and k squarings (fits.exp_steps) on
the calibrated range of Z (calibration runs both forms and records the dense
one's wider range, so both use one fit). No row normalisation, as in the
paper. The softmax baseline needs no maximum either: it normalises
softmax(Z / 2^K) and then squares and renormalises K times, so each
reciprocal sees row sums in [1/n, 1].
"""

from __future__ import annotations

import math
from typing import Any, List, Optional

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
        #: score each token against its own sequence only ((n, T * heads) scores) when the batch
        #: holds several sequences, forward and backward; False: the (n, n) score matrix with a
        #: block-diagonal mask (for one sequence it is the same matrix from fewer operations)
        self.per_sequence = True

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, lora_rank={self.lora_rank}"

    def forward(self, x: Any, run: Any) -> Any:
        need = 4 if any(isinstance(m, LoRALinear) and m.adapters_encrypted for m in (self.q, self.k, self.v)) else 3
        x = run.ready(x, need, self, "input")
        run.save(self, "input", x=x)
        out = None
        full = [p.project(x, run) for p in (self.q, self.k, self.v)]  # one product each, all heads
        if self.per_sequence and run.batch > 1:
            out = self._per_sequence(full, run)
            if not run.calibrating:
                out = run.ready(out, 1, self, "heads")
                return self.o.project(out, run)
            # calibration also runs the dense form (a batch of one uses it): its sites and ranges;
            # the layer's output is the dense form's (the same function), not the sum of both
            out = None
        if self.n_heads > 1:
            full = run.ready_many([(t, 1, site) for t, site in zip(full, ("q_all", "k_all", "v_all"))], self)
        for h in range(self.n_heads):
            # head h's columns by a plaintext mask (a level, no rotation) instead of a product per head
            m = _head_mask(self.d_model, h, self.head_dim) if self.n_heads > 1 else None
            q, k, v = full if m is None else (t * m for t in full)
            e = self.weights(q, k, run, h)
            e, v = run.ready_many([(e, 3, "weights"), (v, 3, "values")], self)
            run.save(self, h, e=e, v=v)
            o = run.matmul(e, v)
            out = o if out is None else run.add(out, o, self, "heads")
        out = run.ready(out, 1, self, "heads")
        return self.o.project(out, run)

    def weights(self, q: Any, k: Any, run: Any, head: int) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def packed_weights(self, q: Any, k: Any, run: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _score_matrix(self, o: int, t: int, scale: float) -> np.ndarray:
        """(d, T H): ``scale`` where column o H + h sums head h's features."""
        h, dh = self.n_heads, self.head_dim
        m = np.zeros((self.d_model, t * h))
        for j in range(h):
            m[j * dh:(j + 1) * dh, o * h + j] = scale
        return m

    def _spread_matrix(self, o: int, t: int) -> np.ndarray:
        """(T H, d): score column o H + h copied to every feature of head h."""
        h, dh = self.n_heads, self.head_dim
        m = np.zeros((t * h, self.d_model))
        for j in range(h):
            m[o * h + j, j * dh:(j + 1) * dh] = 1.0
        return m

    def packed_mask(self, run: Any) -> np.ndarray:
        """(n, T H) 0/1: score column o H + h of token i belongs to a real key."""
        return np.repeat(run.offset_mask(), self.n_heads, axis=1)

    def _per_sequence(self, full: List[Any], run: Any) -> Any:
        """The heads' outputs summed (n, d), scoring each token within its own sequence."""
        t = run.seq_len
        q, k, v = full
        e = self.packed_weights(q, k, run)  # (n, T H), at least 2 levels left (3 while training)
        # a roll, then the product with the weights; training keeps a level on each rolled value
        # and spread weight for the backward's products with dO
        v = run.ready(v, 2 + _training(run), self, "values_p")
        out = None
        rolled, spread = [], []
        for o in range(t):
            vo = v if o == 0 else v.roll_rows(o, t)
            eo = run.matmul(e, run.matrix(self, ("spread", t, o), lambda o=o: self._spread_matrix(o, t)))
            part = eo * vo
            out = part if out is None else out + part
            rolled.append(vo)
            spread.append(eo)
        run.save(self, "packed", v=rolled, e=spread)  # the backward's products with dO
        return out

    def _rolled_keys(self, q: Any, k: Any, run: Any) -> tuple:
        """(q, [K_0, ..., K_{T-1}]) with 2 levels left on each (a product, a CPMM)."""
        t = run.seq_len
        q, k = run.ready_many([(q, 2, "q_p"), (k, 3, "k_p")], self)
        return q, [k if o == 0 else k.roll_rows(o, t) for o in range(t)]


def _training(run: Any) -> int:
    """1 while a training forward records (its backward multiplies by saved tensors), else 0."""
    return int(run.tape is not None)


def _head_mask(d: int, h: int, dh: int) -> np.ndarray:
    m = np.zeros(d)
    m[h * dh:(h + 1) * dh] = 1.0
    return m


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

    def _exp(self, z: Any, run: Any, site: str, last_levels: int, last_site: str) -> tuple:
        """exp(z) as p(z / 2^k)^(2^k): (z refreshed for p, the result refreshed to ``last_levels``,
        the squarings' inputs, which the backward differentiates exactly). One calibrated range
        ("scores") serves the dense and the per-sequence forms."""
        p, squarings = self.exp_steps()
        z = run.ready(z, p.depth, self, "scores")
        e = z.polyval(p)
        chain = []
        for _ in range(squarings):  # exp(z / 2^j) <= exp(1/4) < 1.5 at every step
            e = run.ready(e, 1, self, site, bound=1.5)
            chain.append(e)
            e = (e * e).assume_bound(1.5)
        return z, run.ready(e, last_levels, self, last_site, bound=1.5), chain

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
        z, e, chain = self._exp(z, run, "exp", 1, "exp")
        run.save(self, head, z=z, chain=chain)  # the backward differentiates p(z)^(2^k) exactly
        return e * run.attention_mask()  # a plaintext in e's own packing


    def packed_weights(self, q: Any, k: Any, run: Any) -> Any:
        t, c = run.seq_len, 1.0 / (2.0 * math.sqrt(self.head_dim))
        q, ks = self._rolled_keys(q, k, run)
        z = None
        diffs = []
        for o, ko in enumerate(ks):
            d = q - ko
            diffs.append(d)
            zo = run.matmul(d * d, run.matrix(self, ("gk_scores", t, o), lambda o=o: self._score_matrix(o, t, -c)))
            z = zo if z is None else z + zo
        mask = self.packed_mask(run)
        if run.calibrating:
            run.record(self, "scores", z)
            return run.ready(type(z)(np.exp(z.numpy()) * mask), 3, self, "weights_p")
        # the last refresh leaves levels for the mask, the spread and the values
        z, e, chain = self._exp(z, run, "exp_p", 3 + _training(run), "weights_p")
        run.save(self, "packed_scores", diffs=diffs, z=z, chain=chain)  # d_o = q - K_o; p(z)^(2^k)
        return e * mask


class SoftmaxAttention(_Attention):
    """softmax(q k^T / sqrt(head_dim)) over the real keys of each sequence, with range
    reduction by normalised squaring (no maximum needed):

        y_0     = softmax(z / 2^K)                    exp by a polynomial on a width <= 2
        y_{t+1} = y_t^2 / rowsum(y_t^2)  (K times)    = softmax(z / 2^(K-t-1))

    A row of y_t sums to 1 over at most ``seq_len`` keys, so every rowsum(y_t^2) lies in
    [1 / seq_len, 1] (Cauchy-Schwarz) whatever the spread of that row's scores, and one
    reciprocal polynomial on that range serves every step; the first row sums lie in
    [e^-2, seq_len]. Row sums are a product with a ones matrix. This is the baseline
    that Gaussian-kernel attention (no normalisation at all) is measured against."""

    def exp_steps(self) -> tuple:
        """(polynomial of exp((z - hi) / 2^K) on the calibrated score range, K)."""
        r = self.ranges.get("scores")
        if r is None:
            raise ValueError("SoftmaxAttention is not calibrated: the range of its scores is unknown; "
                             "calibrate the model (model.calibrate(inputs) or from_torch(..., calibration=inputs))")
        lo, hi = fits.widen(float(r[0]), float(r[1]), self.margin)
        return fits.softmax_exp(lo, hi, int(self.max_depth))

    def _reciprocal(self, lo: float) -> tuple:
        """(polynomial, Newton steps) of 1/u on [lo, 1]."""
        return fits.reciprocal_steps(float(lo), int(self.max_depth))

    def weights(self, q: Any, k: Any, run: Any, head: int) -> Any:
        n = run.n_tokens
        q, k = run.ready_many([(q, 3, "q"), (k, 3, "k")], self)
        z = run.matmul(q, run.ready(k * (1.0 / math.sqrt(self.head_dim)), 3, self, "k_scaled").T)
        mask = run.attention_mask()
        if run.calibrating:
            run.record(self, "scores", z)
            zz = np.where(mask > 0, z.numpy(), -np.inf)
            e = np.exp(zz - np.max(zz, axis=1, keepdims=True)) * mask
            return type(z)(e / np.maximum(e.sum(1, keepdims=True), 1e-300))
        ones = run.matrix(self, ("ones", n), lambda: np.ones((n, n)))
        y, z, saved = self._normalise(z, mask, ones, np.ones((n, n)), run, "")
        run.save(self, head, q=q, k=k, z=z, softmax=saved)  # per step what the backward differentiates
        return y

    def packed_weights(self, q: Any, k: Any, run: Any) -> Any:
        t, h = run.seq_len, self.n_heads
        q, ks = self._rolled_keys(q, k, run)
        z = None
        for o, ko in enumerate(ks):
            zo = run.matmul(q * ko, run.matrix(self, ("dot_scores", t, o),
                                               lambda o=o: self._score_matrix(o, t, 1.0 / math.sqrt(self.head_dim))))
            z = zo if z is None else z + zo
        mask = self.packed_mask(run)
        same_head = np.kron(np.ones((t, t)), np.eye(h))  # column o H + j sums the columns of head j
        if run.calibrating:
            run.record(self, "scores", z)
            zz = np.where(mask > 0, z.numpy(), -np.inf).reshape(-1, t, h)
            e = np.exp(zz - np.max(zz, axis=1, keepdims=True))
            e = e / np.maximum(e.sum(1, keepdims=True), 1e-300)
            return run.ready(type(z)(np.nan_to_num(e.reshape(z.shape)) * mask), 3, self, "weights_p")
        ones = run.matrix(self, ("head_sums", t), lambda: same_head)
        y, z, saved = self._normalise(z, mask, ones, same_head, run, "_p")
        run.save(self, "packed_scores", q=q, keys=ks, z=z, softmax=saved)
        return run.ready(y, 3 + _training(run), self, "weights_p", bound=1.0)

    def _normalise(self, z: Any, mask: np.ndarray, ones: Any, ones_np: np.ndarray, run: Any, tag: str) -> tuple:
        """The range-reduced softmax of the scores ``z`` over the keys that ``mask`` marks
        (``z @ ones``: every score's row sum over its own head; dense: the whole row);
        returns (weights, the scores as refreshed, per step what the backward needs)."""
        m = run.seq_len
        p, steps = self.exp_steps()
        # rows with no real key (a sequence of padding only) get a row sum of 1, not 0
        empty = ((mask @ ones_np) == 0).astype(np.float64)
        z = run.ready(z, p.depth + 1, self, "scores")  # one calibrated range for both forms
        y = z.polyval(p) * mask  # exp((z - hi) / 2^K) in [e^-2, 1] on the real keys, 0 elsewhere
        top, low = float(m) * 1.05, math.exp(-fits.SOFTMAX_SPREAD) / 1.05
        saved = []  # per step what the backward differentiates (nn/backward.py)
        for t in range(steps + 1):
            a = None
            if t:  # square: a row of y sums to 1, so its squares sum to [1/m, 1]
                a = y = run.ready(y, 1, self, "softmax" + tag, bound=1.0)
                y = (y * y).assume_bound(1.0)
                top, low = 1.05, 1.0 / (m * 1.05)
            y = run.ready(y, 2, self, "softmax" + tag, bound=1.0)  # a product with a plaintext: at most 2 levels
            s = run.matmul(y, ones)  # the row sums, in every column
            if empty.any():
                s = s + empty
            rp, newton = self._reciprocal(low / top)
            u = run.ready(s * (1.0 / top), rp.depth, self, "sums_scaled" + tag, bound=1.0)
            st = dict(a=a, u=u, rp=rp, top=top, newton=[])
            r = u.polyval(rp)
            for _ in range(newton):  # r (2 - u r): two levels on r, and u r one below u
                r, u = run.ready_many([(r, 2, "newton" + tag, 1.05 / rp.a), (u, 2, "sums_scaled" + tag, 1.0)], self)
                st["newton"].append((r, u))
                r = (r * (2.0 - u * r)).assume_bound(1.05 / rp.a)
            r, y = run.ready_many([(r, 2, "recip" + tag, 1.05 / rp.a), (y, 2, "softmax" + tag, 1.0)], self)
            st.update(w=y, r=r)
            saved.append(st)
            y = (y * (r * (1.0 / top))).assume_bound(1.0)  # the rows now sum to 1
        return y, z, saved
