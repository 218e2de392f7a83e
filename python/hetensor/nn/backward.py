"""Backward passes of the hetensor.nn layers, written once against the tensor
interface (plain, simulate and encrypted mode run the same code).

Each function gets the gradient of the module's output and returns the
gradient of its input (None where nothing trainable lies below), adding the
gradients of trainable weights on the way. Derivatives are those of the
approximations the forward ran, not of the exact functions: an activation's
derivative is the derivative polynomial; exp by ``p(z)^(2^k)`` is
differentiated through its squarings (``D_0 = p'(z)``, ``D_{j+1} = 2 e_j
D_j``); LayerNorm's inverse square root through its Newton steps. So plain
mode gives the exact gradient of the polynomial model (tests: torch autograd
on the same forward agrees to >= 30 bits).

Bootstraps: every operand is passed through :meth:`Ops.ready`, which
refreshes it when its level runs short, scaled by the range a backward
calibration pass (:func:`hetensor.nn.calibrate_training`) recorded at that
site, doubled (``GRAD_MARGIN``): gradients move more between batches than
activations.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from numpy.polynomial import chebyshev as _cheb

from .. import approx
from .activation import _Activation
from .attention import GaussianKernelAttention, SoftmaxAttention
from .autograd import GRAD_MARGIN, Parameter, backward_module, bound_of, param_bound, register
from .full import TrainableLinear
from .linear import Linear, LoRALinear
from .module import Module, Sequential
from .norm import LayerNorm
from .plan import GhostArray
from .tensors import CipherArray, PlainArray, UNLIMITED
from .transformer import FeedForward, MeanPool, TransformerClassifier, TransformerEncoderLayer


#: How far past a recorded gradient bound a bootstrap input may go (its error grows like
#: |x|^5 past 1: docs/BOOTSTRAP.md) before plain and simulate mode refuse it.
BOOT_TOLERANCE = 1.5


def _is_tensor(x: Any) -> bool:
    return isinstance(x, (PlainArray, CipherArray, GhostArray))  # GhostArray: a planned step


def _level(x: Any) -> int:
    return int(getattr(x, "level", UNLIMITED))


def derivative(p: approx.Polynomial) -> approx.Polynomial:
    """p' as a Chebyshev series on p's interval (one degree lower, depth at most p's)."""
    c = _cheb.chebder(np.asarray(p.coeffs, dtype=np.float64)) * (2.0 / (p.b - p.a))
    if c.size == 0:
        c = np.zeros(1)
    return approx.Polynomial(c, p.a, p.b, name=f"d/dx {p.name}")


def check_range(x: Any, lo: float, hi: float, what: str) -> None:
    """Plain and simulate mode see the values: refuse those outside [lo, hi] (where the
    encrypted run would bootstrap or evaluate a polynomial on garbage) with the reason."""
    if not isinstance(x, PlainArray):
        return
    v = x.numpy()
    vlo, vhi = float(np.min(v)), float(np.max(v))
    tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
    if vlo < lo - tol or vhi > hi + tol:
        raise ValueError(f"{what}: values in [{vlo:.4g}, {vhi:.4g}] leave the calibrated range [{lo:.4g}, {hi:.4g}]; "
                         f"an encrypted run would compute garbage here. Re-run hetensor.nn.calibrate_training with "
                         f"the training batch size (and data like the training data), or lower the learning rate")


class Ops:
    """The backward's arithmetic with level management: each operand is readied
    (bootstrapped when short of levels) at a named site of ``module``."""

    def __init__(self, run: Any, module: Any, prefix: str = "bwd.") -> None:
        self.run, self.module, self.prefix = run, module, prefix
        tape = getattr(run, "tape", None)
        self.calibrating = bool(tape is not None and tape.calibrating)

    def ready(self, items: List[tuple]) -> List[Any]:
        """``[(x, need, site[, bound])]`` -> the tensors with ``need`` levels (plus the reserve)
        each; ``bound`` (a known bound on |x|) replaces the recorded range."""
        run, out = self.run, []
        todo = []
        for it in items:
            x, need, site = it[0], it[1], it[2]
            known = it[3] if len(it) > 3 else None
            key = self.prefix + site
            if known is not None:
                if _level(x) < need + run.reserve:
                    check_range(x, -known, known, f"{run.name_of(self.module)} at site '{key}'")
                todo.append((x, need, key, float(known)))
                continue
            if self.calibrating and isinstance(x, PlainArray):
                v = x.numpy()
                lo, hi = float(np.min(v)), float(np.max(v))
                old = self.module.ranges.get(key)
                self.module.ranges[key] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]
            bound = bound_of(self.module, key, GRAD_MARGIN)
            if bound is not None and _level(x) < need + run.reserve:
                # another batch order than calibration's may pass the recorded range (x2) a little: the
                # bootstrap takes |x / bound| up to BOOT_TOLERANCE at ~2^-22 (2^-25 within 1)
                lim = BOOT_TOLERANCE * bound
                check_range(x, -lim, lim, f"{run.name_of(self.module)} at backward site '{key}'")
            if bound is None and _level(x) < need + run.reserve:
                raise ValueError(
                    f"{run.name_of(self.module)} must bootstrap at backward site '{key}' but no range was recorded "
                    f"there: run hetensor.nn.calibrate_training(model, inputs, targets, loss) in plain mode first")
            todo.append((x, need, key, bound if bound is not None else 1.0))
        if not todo:
            return out
        return run.ready_many(todo, self.module)

    def mat(self, key: Any, build: Callable[[], np.ndarray]) -> Any:
        """A plaintext matrix (encoded once per context in encrypted mode)."""
        return self.run.matrix(self.module, ("bwd", key), build)

    @staticmethod
    def _item(x: Any, need: int, site: Any) -> tuple:
        """A ready() item; ``site`` is a name or (name, known bound)."""
        return (x, need, site[0], site[1]) if isinstance(site, tuple) else (x, need, site)

    def mm(self, a: Any, b: Any, site: Any, sb: Any = None) -> Any:
        """``a @ b``; ``site`` names a (or the product when one side is plaintext), ``sb`` names b."""
        if _is_tensor(a) and _is_tensor(b):
            a, b = self.ready([self._item(a, 3, site if sb is not None else site + ".a"),
                               self._item(b, 3, sb if sb is not None else site + ".b")])
        elif _is_tensor(a):
            (a,) = self.ready([self._item(a, 1, site)])
        else:
            (b,) = self.ready([self._item(b, 1, site)])
        return a @ b

    def mul(self, a: Any, b: Any, site: Any, sb: Any = None) -> Any:
        if _is_tensor(a) and _is_tensor(b):
            a, b = self.ready([self._item(a, 2, site if sb is not None else site + ".a"),
                               self._item(b, 2, sb if sb is not None else site + ".b")])
            return a * b
        if not _is_tensor(a):
            a, b = b, a
        free = isinstance(b, numbers.Number) and float(b).is_integer()
        if not free:
            (a,) = self.ready([self._item(a, 1, site)])
        return a * b

    def add(self, a: Any, b: Any, site: str, bound: Optional[float] = None) -> Any:
        """``a + b`` (None is zero); ``bound``: a known bound on both operands."""
        if a is None:
            return b
        if b is None:
            return a
        if _is_tensor(a) and _is_tensor(b):
            if bound is None:
                a, b = self.ready([(a, 1, site + ".a"), (b, 1, site + ".b")])
            else:
                a, b = self.ready([(a, 1, site + ".a", bound), (b, 1, site + ".b", bound)])
        return a + b

    def sub(self, a: Any, b: Any, site: str) -> Any:
        return self.add(a, self.mul(b, -1, site + ".neg"), site)

    def roll(self, x: Any, shift: int, block: int, site: str) -> Any:
        """``x.roll_rows(shift mod block, block)`` (one level); a roll by ``-o`` is the
        transpose of a roll by ``o``."""
        s = int(shift) % int(block)
        if s == 0:
            return x
        (x,) = self.ready([(x, 1, site)])
        return x.roll_rows(s, block)

    def poly(self, x: Any, p: approx.Polynomial, site: str, bound: Optional[float] = None) -> Any:
        (x,) = self.ready([(x, p.depth, site) if bound is None else (x, p.depth, site, bound)])
        return x.polyval(p)


# -- the modules -----------------------------------------------------------------------

def accumulate(module: Any, name: str, g: Any, run: Any) -> None:
    """Add ``g`` to the gradient of ``module.<name>``."""
    grads = module.__dict__.setdefault("_grads", {})
    module.__dict__.setdefault("_grad_runs", {})[name] = run
    old = grads.get(name)
    if old is None:
        grads[name] = g
        return
    b = bound_of(module, "grad." + name, GRAD_MARGIN)
    scale = Parameter(module, name).scale
    items = [(old, 1, "grad_acc.a"), (g, 1, "grad_acc.b")] if b is None else \
        [(old, 1, "grad_acc.a", 4.0 * b / scale), (g, 1, "grad_acc.b", 2.0 * b / scale)]
    old, g = Ops(run, module).ready(items)
    grads[name] = old + g


@register(Linear)
def _linear(m: Linear, g: Any, run: Any, need_dx: bool) -> Any:
    if not need_dx:
        return None
    ops = Ops(run, m)
    return ops.mm(g, ops.mat("w", lambda: m.weight), "dy")


def lora_backward(m: LoRALinear, g: Any, run: Any, need_dx: bool) -> Any:
    """y = x W^T + b + s (x A^T) B^T: dA, dB accumulated; returns dX when ``need_dx``.

    Plaintext adapters (plain, simulate): du = s dY B, dA = du^T x, dB = s dY^T (x A^T).
    Encrypted adapters A' = A^T, B' = s B^T: dB' = (x A')^T dY, du = dY B'^T,
    dA' = x^T du: the thin LoRA products of :mod:`hetensor.linalg`."""
    saved = run.tape.get(m, "proj")
    x, xa = saved["x"], saved["xa"]
    ops = Ops(run, m)
    # operands are named by tensor (dy, x, xa, du), the same in both branches, so that a
    # plain calibration pass (plaintext adapters) covers an encrypted run (encrypted ones)
    if not m.adapters_encrypted:
        if run.mode == "encrypted":
            raise ValueError("encrypted training needs encrypted adapters: call hetensor.nn.encrypt_adapters(model, "
                             "ctx) before the forward (the gradients are ciphertexts, so are the updated weights)")
        s = m.scaling
        du = ops.mm(g, ops.mat("sB", lambda: s * m.lora_B), "dy")
        accumulate(m, "lora_A", ops.mm(du.T, x, "du", "x"), run)
        accumulate(m, "lora_B", ops.mul(ops.mm(g.T, xa, "dy", "xa"), s, "dB"), run)
        if not need_dx:
            return None
        dx = ops.mm(du, ops.mat("A", lambda: m.lora_A), "du")
    else:

        if isinstance(g, GhostArray):  # a planned step: the adapters as ghosts of their ciphertexts
            from ..linalg import runmode as rm

            a, b = (GhostArray(rm.GhostTensor.like(t), g.rec) for t in (m.lora_A, m.lora_B))
        else:
            mk = _make_keys(g)
            a, b = CipherArray(m.lora_A, mk), CipherArray(m.lora_B, mk)
        ba = param_bound(Parameter(m, "lora_A"))
        bb = param_bound(Parameter(m, "lora_B")) * max(1.0, m.scaling)
        accumulate(m, "lora_B", ops.mm(xa.T, g, "xa", "dy"), run)
        du = ops.mm(g, b.T, "dy", ("B", bb))
        accumulate(m, "lora_A", ops.mm(x.T, du, "x", "du"), run)
        if not need_dx:
            return None
        dx = ops.mm(du, a.T, "du", ("A", ba))
    return ops.add(ops.mm(g, ops.mat("w", lambda: m.base.weight), "dy"), dx, "dx")


def _make_keys(t: Any) -> bool:
    return bool(getattr(t, "make_keys", False))


@register(LoRALinear)
def _lora(m: LoRALinear, g: Any, run: Any, need_dx: bool) -> Any:
    return lora_backward(m, g, run, need_dx)


@register(TrainableLinear)
def _trainable_linear(m: TrainableLinear, g: Any, run: Any, need_dx: bool) -> Any:
    """y = x W^T + b, W trained: dW = dY^T x (plaintext W), or the stored form
    dW^T = x^T dY (encrypted W^T: a CCMM); dX = dY W (a CCMM when encrypted)."""
    x = run.tape.get(m, "proj")["x"]
    ops = Ops(run, m)
    if not m.weights_encrypted:
        if run.mode == "encrypted":
            raise ValueError("encrypted training needs encrypted weights: call hetensor.nn.encrypt_adapters(model, "
                             "ctx) before the forward")
        accumulate(m, "weight", ops.mm(g.T, x, "dy", "x"), run)
        return ops.mm(g, ops.mat("w", lambda: m.weight), "dy") if need_dx else None
    if isinstance(g, GhostArray):  # a planned step: the weight as a ghost of its ciphertext
        from ..linalg import runmode as rm

        wt = GhostArray(rm.GhostTensor.like(m.weight), g.rec)
    else:
        wt = CipherArray(m.weight, _make_keys(g))
    accumulate(m, "weight", ops.mm(x.T, g, "x", "dy"), run)
    if not need_dx:
        return None
    return ops.mm(g, wt.T, "dy", ("W", param_bound(Parameter(m, "weight"))))


def _project_backward(p: Module, g: Any, run: Any, need_dx: bool) -> Any:
    if isinstance(p, LoRALinear):
        return lora_backward(p, g, run, need_dx)
    if isinstance(p, TrainableLinear):
        return _trainable_linear(p, g, run, need_dx)
    return _linear(p, g, run, need_dx)


@register(_Activation)
def _activation(m: _Activation, g: Any, run: Any, need_dx: bool) -> Any:
    if not need_dx:
        return None
    x = run.tape.get(m, "input")["x"]
    ops = Ops(run, m)
    return ops.mul(g, ops.poly(x, derivative(m.polynomial()), "x"), "dy")


@register(LayerNorm)
def _layernorm(m: LayerNorm, g: Any, run: Any, need_dx: bool) -> Any:
    """y = cg r + bias, cg = c w / sqrt(S), r = R(v), v = (c*c) J/(nS) + eps/S, c = x (I - J/n)."""
    if not need_dx:
        return None
    n, S = m.d_model, m.var_scale()
    out, inv = run.tape.get(m, "out"), run.tape.get(m, "inv_sqrt")
    c, cg, r = out["c"], out["cg"], out["r"]
    v, ys = inv["v"], inv["ys"]
    ops = Ops(run, m)
    dcg = ops.mul(g, r, "dcg")
    dr = ops.mul(g, cg, "dr")
    # dR/dv through the polynomial and the Newton steps y <- 1.5 y - 0.5 v y^3 (forward mode)
    p, _ = m.inv_sqrt_steps()
    d = ops.poly(v, derivative(p), "v")
    for t, y in enumerate(ys):
        y2 = ops.mul(y, y, f"y{t}")
        y3 = ops.mul(y2, y, f"y2_{t}")
        f = ops.add(ops.mul(ops.mul(v, y2, f"vy2_{t}"), -1.5, f"vy2s_{t}"), 1.5, f"f{t}")
        d = ops.add(ops.mul(d, f, f"d{t}"), ops.mul(y3, -0.5, f"y3_{t}"), f"dn{t}")
    dv = ops.mul(dr, d, "dv")
    dcc = ops.mm(dv, ops.mat(("var", S), lambda: np.full((n, n), 1.0 / (n * S))), "dv_mean")
    dc = ops.add(ops.mul(dcg, m.weight / math.sqrt(S), "dcg_w"), ops.mul(ops.mul(dcc, c, "dcc"), 2, "dcc2"), "dc")
    return ops.mm(dc, ops.mat("center", lambda: np.eye(n) - 1.0 / n), "dc_center")


def _head_mask(d: int, h: int, dh: int) -> np.ndarray:
    msk = np.zeros(d)
    msk[h * dh:(h + 1) * dh] = 1.0
    return msk


def _head_values_backward(ops: Ops, d_out: Any, sv: Dict[str, Any], d: int, h: int, dh: int) -> tuple:
    """The values' part of head ``h``'s backward (both attentions), from its saved ``v`` and ``e``:
    (dE = dO v^T, dv = (E^T dO) * mask_h: the head's columns of dv)."""
    de = ops.mm(d_out, sv["v"].T, f"h{h}.dE")
    dv_h = ops.mul(ops.mm(sv["e"].T, d_out, f"h{h}.dv"), _head_mask(d, h, dh), f"h{h}.dv_mask")
    return de, dv_h


@register(GaussianKernelAttention)
def _gk_attention(m: GaussianKernelAttention, g: Any, run: Any, need_dx: bool) -> Any:
    """Per head (c = 1 / (2 sqrt(dh)), M the 0/1 mask, E = exp(Z) M):
    dE = dO v^T, dv = E^T dO (head columns), dZ = dE M exp'(Z),
    dq = 2c (dZ k - rowsum(dZ) q), dk = 2c (dZ^T q - colsum(dZ) k)."""
    if _ran_per_sequence(m, run):
        return _gk_per_sequence(m, g, run, need_dx)
    n, d, dh = run.n_tokens, m.d_model, m.head_dim
    c = 1.0 / (2.0 * math.sqrt(dh))
    ops = Ops(run, m)
    d_out = _linear(m.o, g, run, True)  # gradient of the heads' sum
    p, squarings = m.exp_steps()
    dp = derivative(p)
    mask = run.attention_mask()
    ones = np.ones((n, d))
    dq = dk = dv = None
    for h in range(m.n_heads):
        sv = run.tape.get(m, h)
        q, k, z, chain = sv["q"], sv["k"], sv["z"], sv["chain"]
        de, dv_h = _head_values_backward(ops, d_out, sv, d, h, dh)
        # exp'(Z) of the approximation p(Z)^(2^k): D_0 = p'(Z), D_{j+1} = 2 e_j D_j
        dexp = ops.poly(z, dp, f"h{h}.z")
        for j, ej in enumerate(chain):
            dexp = ops.mul(ops.mul(ej, dexp, f"h{h}.chain{j}"), 2, f"h{h}.chain2_{j}")
        dz = ops.mul(ops.mul(de, mask, f"h{h}.dE_mask"), dexp, f"h{h}.dZ")
        rows = ops.mm(dz, ops.mat(("ones", n, d), lambda: ones), f"h{h}.rowsum")
        cols = ops.mm(dz.T, ops.mat(("ones", n, d), lambda: ones), f"h{h}.colsum")
        dq_h = ops.sub(ops.mm(dz, k, f"h{h}.dZk"), ops.mul(rows, q, f"h{h}.rq"), f"h{h}.dq")
        dk_h = ops.sub(ops.mm(dz.T, q, f"h{h}.dZq"), ops.mul(cols, k, f"h{h}.ck"), f"h{h}.dk")
        dq = ops.add(dq, ops.mul(dq_h, 2.0 * c, f"h{h}.dq2c"), "dq")
        dk = ops.add(dk, ops.mul(dk_h, 2.0 * c, f"h{h}.dk2c"), "dk")
        dv = ops.add(dv, dv_h, "dv")
    return _qkv_backward(m, ops, (dq, dk, dv), run, need_dx)


def _qkv_backward(m: Any, ops: Ops, grads: tuple, run: Any, need_dx: bool) -> Any:
    """The q, k, v projections' backward from their output gradients: dX summed."""
    dx = None
    for proj, gp in zip((m.q, m.k, m.v), grads):
        dx = ops.add(dx, _project_backward(proj, gp, run, need_dx), "dx")
    return dx if need_dx else None


# -- per-sequence attention (hetensor.nn.attention: the form a batch of several sequences runs) --
# Every product is with a small plaintext matrix or element-wise: the transpose of
# roll_rows(., o, T) is roll_rows(., -o, T), that of a CPMM by M is a CPMM by M^T.

def _ran_per_sequence(m: Any, run: Any) -> bool:
    """Whether the training forward ran ``m``'s per-sequence form (it saved its rolled values)."""
    return "packed" in run.tape.saved.get(id(m), {})


def _packed_values_backward(m: Any, ops: Ops, d_out: Any, run: Any) -> tuple:
    """out = sum_o (E B_o) * V_o with V_o = roll_rows(v, o, T): returns
    dE = sum_o (dO * V_o) B_o^T ((n, T H)) and dv = sum_o roll_rows(dO * (E B_o), -o, T)."""
    t = run.seq_len
    sv = run.tape.get(m, "packed")
    # 2 T products, then a CPMM or a roll: dO refreshed once (if at all), not per offset; the
    # terms of each sum come from the same operations (one layout), so they add without a level
    (d_out,) = ops.ready([(d_out, 3, "p.dO")])
    de = dv = None
    for o in range(t):
        dvo = ops.mul(d_out, sv["v"][o], "p.dO", "p.v")
        de_o = ops.mm(dvo, ops.mat(("spreadT", t, o), lambda o=o: m._spread_matrix(o, t).T), "p.dO_v")
        de = de_o if de is None else de + de_o
        dv_o = ops.roll(ops.mul(d_out, sv["e"][o], "p.dO", "p.eB"), -o, t, "p.dO_eB")
        dv = dv_o if dv is None else dv + dv_o
    return de, dv


def _qkv_ready(m: Any, ops: Ops, grads: tuple) -> tuple:
    """dq, dk, dv refreshed together (complex-packed pairs) when the projections' backward
    (an encrypted product: 3 levels; else 1) would refresh each on its own, once per product."""
    enc = any(getattr(p, "adapters_encrypted", False) or getattr(p, "weights_encrypted", False)
              for p in (m.q, m.k, m.v))
    return tuple(ops.ready([(gq, 3 if enc else 1, f"p.{n}_r") for gq, n in zip(grads, ("dq", "dk", "dv"))]))


def _gk_per_sequence(m: GaussianKernelAttention, g: Any, run: Any, need_dx: bool) -> Any:
    """Z = sum_o (d_o * d_o) M_o with d_o = q - K_o, K_o = roll_rows(k, o, T), M_o = -c on
    head h's features into column o H + h; E = exp(Z) * mask. With G_o = dZ M_o^T:
    dq = 2 sum_o d_o * G_o, dk = -2 sum_o roll_rows(d_o * G_o, -o, T)."""
    t, c = run.seq_len, 1.0 / (2.0 * math.sqrt(m.head_dim))
    ops = Ops(run, m)
    d_out = _linear(m.o, g, run, True)
    de, dv = _packed_values_backward(m, ops, d_out, run)
    sv = run.tape.get(m, "packed_scores")
    p, _ = m.exp_steps()
    # exp'(Z) of p(Z)^(2^k) through its squarings, as in the dense form
    dexp = ops.poly(sv["z"], derivative(p), "p.z")
    for j, ej in enumerate(sv["chain"]):
        dexp = ops.mul(ops.mul(ej, dexp, f"p.chain{j}"), 2, f"p.chain2_{j}")
    dz = ops.mul(ops.mul(de, m.packed_mask(run), "p.dE_mask"), dexp, "p.dZ")
    (dz,) = ops.ready([(dz, 3, "p.dz")])  # T CPMMs, each into a product: refreshed once
    dq = dk = None
    for o in range(t):
        go = ops.mm(dz, ops.mat(("gk_scoresT", t, o), lambda o=o: m._score_matrix(o, t, -c).T), "p.dz")
        w = ops.mul(sv["diffs"][o], go, "p.diff", "p.G")
        dq = w if dq is None else dq + w
        w = ops.roll(w, -o, t, "p.dG")
        dk = w if dk is None else dk + w
    grads = _qkv_ready(m, ops, (ops.mul(dq, 2, "p.dq2"), ops.mul(dk, -2, "p.dk2"), dv))
    return _qkv_backward(m, ops, grads, run, need_dx)


def _softmax_per_sequence(m: SoftmaxAttention, g: Any, run: Any, need_dx: bool) -> Any:
    """Z = sum_o (q * K_o) M_o / sqrt(dh), then the range-reduced softmax over each head's
    T columns (row sums per head: S = kron(1_T 1_T^T, I_H)), back through its steps as in the
    dense form; with G_o = dZ M_o^T / sqrt(dh): dq = sum_o K_o * G_o,
    dk = sum_o roll_rows(q * G_o, -o, T)."""
    t, h = run.seq_len, m.n_heads
    ops = Ops(run, m)
    d_out = _linear(m.o, g, run, True)
    dy, dv = _packed_values_backward(m, ops, d_out, run)
    sv = run.tape.get(m, "packed_scores")
    steps = sv["softmax"]
    sums_t = ops.mat(("head_sums", t), lambda: np.kron(np.ones((t, t)), np.eye(h)).T)
    p, _ = m.exp_steps()
    for s in range(len(steps) - 1, -1, -1):
        dw = _normalise_backward(ops, dy, steps[s], sums_t, f"p.s{s}.")
        if s:
            dy = ops.mul(ops.mul(dw, steps[s]["a"], f"p.s{s}.dw", (f"p.s{s}.a", 1.0)), 2, f"p.s{s}.da")
        else:
            dy = ops.mul(ops.mul(dw, m.packed_mask(run), "p.dw_mask"), ops.poly(sv["z"], derivative(p), "p.z"),
                         "p.dZ", "p.dexp")
    (dz,) = ops.ready([(dy, 3, "p.dz")])  # T CPMMs, each into two products: refreshed once
    scale = 1.0 / math.sqrt(m.head_dim)
    dq = dk = None
    for o in range(t):
        go = ops.mm(dz, ops.mat(("dot_scoresT", t, o), lambda o=o: m._score_matrix(o, t, scale).T), "p.dz")
        w = ops.mul(sv["keys"][o], go, "p.key", "p.G")
        dq = w if dq is None else dq + w
        w = ops.roll(ops.mul(sv["q"], go, "p.q", "p.G"), -o, t, "p.qG")
        dk = w if dk is None else dk + w
    return _qkv_backward(m, ops, _qkv_ready(m, ops, (dq, dk, dv)), run, need_dx)


def _normalise_backward(ops: Ops, dy: Any, st: Dict[str, Any], sums_t: Any, tag: str) -> Any:
    """Gradient of ``w`` through one normalisation ``y = w R / top`` of SoftmaxAttention,
    with ``R`` = Newton's ``r <- 2 r - u r^2`` from ``rp(u)``, ``u = (w S) / top`` (the row
    sums: S the ones matrix, or per head in the per-sequence form); ``sums_t`` is S^T."""
    w, r, u0, rp, top = st["w"], st["r"], st["u"], st["rp"], st["top"]
    rb, ub = 1.05 / rp.a, 1.0
    dw = ops.mul(dy, ops.mul(r, 1.0 / top, (tag + "r", rb)), tag + "dy", (tag + "r_top", rb / top))
    dr = ops.mul(ops.mul(dy, w, tag + "dy", (tag + "w", 1.0)), 1.0 / top, tag + "dr")
    du = None
    for j, (rj, uj) in reversed(list(enumerate(st["newton"]))):
        # r' = 2 r - u r^2: dr = dr' (2 - 2 u r), du = -dr' r^2
        rr = ops.mul(rj, rj, (tag + f"n{j}.r", rb), (tag + f"n{j}.r", rb))
        du = ops.add(du, ops.mul(ops.mul(dr, rr, tag + f"n{j}.dr", (tag + f"n{j}.rr", rb * rb)), -1,
                                 tag + f"n{j}.du"), tag + f"n{j}.du_sum")
        ur = ops.mul(uj, rj, (tag + f"n{j}.u", ub), (tag + f"n{j}.r", rb))
        dr = ops.mul(dr, ops.add(ops.mul(ur, -2, tag + f"n{j}.ur"), 2.0, tag + f"n{j}.f"), tag + f"n{j}.dr",
                     tag + f"n{j}.f")
    du = ops.add(du, ops.mul(dr, ops.poly(u0, derivative(rp), tag + "u", bound=ub), tag + "dr0", tag + "drp"),
                 tag + "du")
    ds = ops.mul(du, 1.0 / top, tag + "du")
    return ops.add(dw, ops.mm(ds, sums_t, tag + "ds"), tag + "dw")


@register(SoftmaxAttention)
def _softmax_attention(m: SoftmaxAttention, g: Any, run: Any, need_dx: bool) -> Any:
    """Per head (z = q k^T / sqrt(dh), M the 0/1 mask): dE = dO v^T, dv = E^T dO (head
    columns), then back through each normalisation (:func:`_normalise_backward`) and
    squaring (``dy_{t-1} = 2 y_{t-1} dw_t``) to ``dZ = dw_0 M p'(z)``, p the fit of exp;
    dq = dZ k / sqrt(dh), dk = dZ^T q / sqrt(dh)."""
    if _ran_per_sequence(m, run):
        return _softmax_per_sequence(m, g, run, need_dx)
    n, d, dh = run.n_tokens, m.d_model, m.head_dim
    ops = Ops(run, m)
    d_out = _linear(m.o, g, run, True)
    p, _ = m.exp_steps()
    dp = derivative(p)
    mask = run.attention_mask()
    dq = dk = dv = None
    for h in range(m.n_heads):
        sv = run.tape.get(m, h)
        q, k, z, steps = sv["q"], sv["k"], sv["z"], sv["softmax"]
        dy, dv_h = _head_values_backward(ops, d_out, sv, d, h, dh)
        for t in range(len(steps) - 1, -1, -1):
            dw = _normalise_backward(ops, dy, steps[t], ops.mat(("ones", n), lambda: np.ones((n, n))), f"h{h}.s{t}.")
            if t:
                dy = ops.mul(ops.mul(dw, steps[t]["a"], f"h{h}.s{t}.dw", (f"h{h}.s{t}.a", 1.0)), 2,
                             f"h{h}.s{t}.da")
            else:
                dy = ops.mul(ops.mul(dw, mask, f"h{h}.dw_mask"), ops.poly(z, dp, f"h{h}.z"), f"h{h}.dZ",
                             f"h{h}.dexp")
        dq_h = ops.mul(ops.mm(dy, k, f"h{h}.dZk"), 1.0 / math.sqrt(dh), f"h{h}.dq")
        dk_h = ops.mul(ops.mm(dy.T, q, f"h{h}.dZq"), 1.0 / math.sqrt(dh), f"h{h}.dk")
        dq, dk, dv = ops.add(dq, dq_h, "dq"), ops.add(dk, dk_h, "dk"), ops.add(dv, dv_h, "dv")
    return _qkv_backward(m, ops, (dq, dk, dv), run, need_dx)


@register(MeanPool)
def _meanpool(m: MeanPool, g: Any, run: Any, need_dx: bool) -> Any:
    if not need_dx:
        return None
    p = run.pool_matrix()
    ops = Ops(run, m)
    return ops.mm(ops.mat(("poolT", p.shape, hash(p.tobytes())), lambda: p.T), g, "dy")


@register(Sequential)
def _sequential(m: Sequential, g: Any, run: Any, need_dx: bool) -> Any:
    for layer in reversed(list(m)):
        g = backward_module(layer, g, run)
    return g


@register(FeedForward)
def _ffn(m: FeedForward, g: Any, run: Any, need_dx: bool) -> Any:
    for layer in (m.fc2, m.act, m.fc1):
        g = backward_module(layer, g, run)
    return g


@register(TransformerEncoderLayer)
def _encoder_layer(m: TransformerEncoderLayer, g: Any, run: Any, need_dx: bool) -> Any:
    ops = Ops(run, m)
    # x1 = x + attn(ln1(x)); y = x1 + ffn(ln2(x1))
    g1 = ops.add(g, backward_module(m.ln2, backward_module(m.ffn, g, run), run), "ffn_residual")
    gx = backward_module(m.ln1, backward_module(m.attn, g1, run), run)
    return ops.add(g1, gx, "attn_residual") if need_dx else None


@register(TransformerClassifier)
def _classifier(m: TransformerClassifier, g: Any, run: Any, need_dx: bool) -> Any:
    for layer in (m.head, m.pool, m.norm, m.layers, m.embed):
        g = backward_module(layer, g, run)
    return g if need_dx else None
