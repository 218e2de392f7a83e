"""Losses for training hetensor.nn models: mean squared error and cross-entropy.

A loss object pairs a model's output with its target; ``model.backward(loss)``
computes the gradient of the loss with respect to the output *in the mode of
the forward* (plain, simulate, encrypted) and runs the backward pass. The
loss value (``loss.item()``) is exact float64 on plaintext logits; encrypted
logits are decrypted for it (the key holder's view; the server never needs
the value, only the gradient).

Cross-entropy under encryption: the gradient is ``(softmax(z) - onehot(y)) /
batch``. The softmax is computed without a maximum and without a wide-range
reciprocal, by normalising and squaring (ranges from a calibration on
plaintext logits, :meth:`CrossEntropyLoss.calibrate`):

    u = z (I - J/C)                      each row minus its mean (softmax(u) = softmax(z))
    e = exp((u - hi) / 2^k)              polynomial on [lo - hi, 0] (+ squarings), 2^-24 relative
    q = e R(e J/C) / C                   normalised: every row sums to 1
    k times: q = q^2 R(q^2 J)            squared and normalised again; q = softmax(u) at the end

where [lo, hi] is the calibrated range of the centred logits u widened by
the margin, k the fewest halvings with exp(-(hi - lo) / 2^k) >= 1/C, and R
is 1/x by a polynomial on [a, 1] (a ~ 1/C) plus Newton steps (2^-24). Every
value stays in [0, 1] and every reciprocal runs on a narrow interval. Why not
one reciprocal of sum(exp(u - hi)) (the range of that sum is [e^-(hi-lo), 1],
3e-5 for the digits model): CKKS errors are absolute, and 1/x over [a, 1]
returns values up to 1/a, so an error of 2^-30 at the top of the range
becomes ~2^-30 / a^2 after the iterations (measured: no bit left at a =
3e-5); the squarings lose only k bits (one per squaring, relative). Labels
may be plaintext (integer class indices or a one-hot matrix: the paper's
shortcut) or an encrypted one-hot matrix.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from .. import approx
from . import fits
from .autograd import wrap_like
from .tensors import CipherArray, PlainArray

#: Default widening of the calibrated logit range (a fraction of its width).
LOSS_MARGIN = 0.25


def _plain_values(x: Any) -> Optional[np.ndarray]:
    from ..tensor import CipherTensor

    if isinstance(x, CipherTensor):
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _decrypted(x: Any) -> np.ndarray:
    v = _plain_values(x)
    if v is not None:
        return v
    return np.asarray(x.context.decrypt(x), dtype=np.float64)


class Loss:
    """A model output paired with its target; pass it to ``model.backward(loss)``."""

    def __init__(self, criterion: Any, output: Any, target: Any) -> None:
        self.criterion, self.output, self.target = criterion, output, target

    def item(self) -> float:
        """The loss value in float64 (encrypted outputs are decrypted: needs the secret key)."""
        return float(self.criterion.value(_decrypted(self.output), self.target))

    def __float__(self) -> float:
        return self.item()

    @property
    def grad(self) -> np.ndarray:
        """dL/d(output) of plaintext outputs, by the same approximations as the encrypted gradient."""
        v = _plain_values(self.output)
        if v is None:
            raise ValueError("the gradient of an encrypted output is computed by model.backward(loss)")
        from .run import Run

        run = Run(_Root(), "plain", batch=1, seq_len=1)
        return self.gradient_tensor(PlainArray(v), run).numpy()

    def gradient_tensor(self, y: Any, run: Any) -> Any:
        """The gradient in the tensor interface of ``y`` (the model's output tensor of ``run``)."""
        out_shape, target = tuple(np.shape(self.output)), self.target
        if tuple(y.shape) != out_shape and not hasattr(self.output, "context"):
            packed = len(out_shape) == 3 and tuple(y.shape) == (out_shape[0] * out_shape[1], out_shape[2])
            if not packed:
                raise ValueError(f"the loss was made from an output of shape {out_shape}, but the model's "
                                 f"last forward returned {tuple(y.shape)}")
            # a (batch, seq_len, d) output is the (batch * seq_len, d) token matrix of the run
            if not hasattr(target, "context") and tuple(np.shape(target)) == out_shape:
                target = np.asarray(target.detach().cpu().numpy() if hasattr(target, "detach") else target,
                                    dtype=np.float64).reshape(y.shape)
        return self.criterion.gradient(y, target, run)

    def __repr__(self) -> str:
        try:
            return f"{type(self.criterion).__name__}({self.item():.6g})"
        except Exception:  # noqa: BLE001 - no key: no value
            return f"{type(self.criterion).__name__}(encrypted)"


class _Root:
    """Stand-in module for runs made outside a model (loss and optimizer arithmetic)."""

    _modules: dict = {}

    def __init__(self) -> None:
        self.ranges: dict = {}

    def named_modules(self, prefix: str = "") -> Any:
        yield prefix, self


def _target_tensor(target: Any, y: Any, n_classes: Optional[int]) -> Any:
    """A plaintext one-hot / value matrix (numpy) or an encrypted one in y's interface."""
    from ..tensor import CipherTensor

    if isinstance(target, CipherTensor):
        return wrap_like(target, y)
    t = np.asarray(target.detach().cpu().numpy() if hasattr(target, "detach") else target)
    if n_classes is not None and t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer) and not np.all(t == np.round(t)):
            raise ValueError("class targets must be integers (or give a one-hot matrix)")
        t = t.astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= n_classes):
            raise ValueError(f"class targets must lie in [0, {n_classes}), got [{t.min()}, {t.max()}]")
        return np.eye(n_classes)[t]
    return t.astype(np.float64)


class MSELoss:
    """mean((output - target)^2) over every element; gradient 2 (output - target) / numel."""

    def __call__(self, output: Any, target: Any) -> Loss:
        return Loss(self, output, target)

    def value(self, y: np.ndarray, target: Any) -> float:
        t = _decrypted(target)
        if t.shape != y.shape:
            raise ValueError(f"target shape {t.shape} != output shape {y.shape}")
        return float(np.mean((y - t) ** 2))

    def gradient(self, y: Any, target: Any, run: Any) -> Any:
        t = _target_tensor(target, y, None)
        if tuple(np.shape(t)) != tuple(y.shape):
            raise ValueError(f"target shape {tuple(np.shape(t))} != output shape {tuple(y.shape)}")
        from .backward import Ops

        ops = Ops(run, _loss_module(run, self), "loss.")
        return ops.mul(ops.sub(y, t, "diff") if isinstance(t, (PlainArray, CipherArray)) else y - t,
                       2.0 / float(np.prod(y.shape)), "scale")


class CrossEntropyLoss:
    """Mean cross-entropy of logits (batch, C) against class indices, a one-hot
    matrix or an encrypted one-hot matrix; see the module docstring for the
    softmax approximation of the gradient.

    ``calibrate(logits)`` fixes the range of the centred logits from plaintext logits (for instance the model's plain-mode
    outputs on the training set); an uncalibrated loss calibrates on the first
    plaintext logits it sees, and refuses encrypted ones.
    """

    def __init__(self, *, margin: float = LOSS_MARGIN, max_depth: Optional[int] = None) -> None:
        self.margin = float(margin)
        self.max_depth = max_depth
        self.range: Optional[Tuple[float, float]] = None

    def calibrate(self, logits: Any) -> "CrossEntropyLoss":
        """Record the range of the centred logits ``z - mean(z)`` of ``logits`` (widening
        what an earlier call recorded)."""
        z = _plain_values(logits)
        if z is None:
            raise ValueError("calibrate the loss on plaintext logits (the model's plain-mode outputs)")
        if z.ndim != 2:
            raise ValueError(f"logits must be (batch, classes), not {z.shape}")
        u = z - z.mean(axis=1, keepdims=True)  # softmax(z) = softmax(u): the rows' offsets drop out
        lo, hi = float(u.min()), float(u.max())
        if self.range is not None:
            lo, hi = min(lo, self.range[0]), max(hi, self.range[1])
        self.range = (lo, hi)
        return self

    def shifted_interval(self) -> Tuple[float, float]:
        """(lo, hi) of the widened logit range; the exp polynomial runs on [lo - hi, 0]."""
        assert self.range is not None
        return fits.widen(self.range[0], self.range[1], self.margin)

    def __call__(self, logits: Any, target: Any) -> Loss:
        if self.range is None:
            if _plain_values(logits) is None:
                raise ValueError("CrossEntropyLoss is not calibrated: call loss.calibrate(plain_logits) before "
                                 "using it on encrypted logits")
            self.calibrate(logits)
        return Loss(self, logits, target)

    def value(self, z: np.ndarray, target: Any) -> float:
        t = _target_tensor(target if not hasattr(target, "context") else _decrypted(target), PlainArray(z), z.shape[1])
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.sum(np.exp(z - zmax), axis=1))
        return float(np.mean(lse - np.sum(t * z, axis=1)))

    def steps(self, max_depth: int, n_classes: int) -> "SoftmaxSteps":
        """The softmax approximation for ``n_classes`` classes and ``max_depth`` levels per polynomial."""
        lo, hi = self.shifted_interval()
        return softmax_steps(float(lo - hi), int(n_classes), int(max_depth))

    def gradient(self, z: Any, target: Any, run: Any) -> Any:
        from .backward import Ops, check_range

        if self.range is None:
            raise ValueError("CrossEntropyLoss is not calibrated: call loss.calibrate(plain_logits)")
        if len(z.shape) != 2:
            raise ValueError(f"logits must be (batch, classes), not {tuple(z.shape)}")
        bsz, C = z.shape
        t = _target_tensor(target, z, C)
        if tuple(np.shape(t)) != (bsz, C):
            raise ValueError(f"targets give {tuple(np.shape(t))}, the logits are {(bsz, C)}")
        max_depth = int(self.max_depth or (run.ctx.usable_levels - 1 if run.ctx is not None else fits.DEFAULT_MAX_DEPTH))
        st = self.steps(max_depth, C)
        ops = Ops(run, _loss_module(run, self), "loss.")
        lo, hi = self.shifted_interval()
        u = ops.mm(z, ops.mat(("center", C), lambda: np.eye(C) - 1.0 / C), "center")  # z minus its row mean
        check_range(u, lo, hi, "CrossEntropyLoss: the centred logits")
        u = ops.add(u, -hi, "shift")
        e = ops.poly(u, st.exp, "z", bound=hi - lo)  # exp((u - hi) / 2^(k + squarings)) in (0, 1]
        for j in range(st.squarings):
            (e,) = ops.ready([(e, 2, f"sq{j}", ONE)])
            e = (e * e).assume_bound(ONE)
        q = _normalise(ops, e, st, ops.mat(("mean", C), lambda: np.full((C, C), 1.0 / C)), 1.0 / C, "n")
        ones = ops.mat(("sum", C), lambda: np.ones((C, C)))
        for j in range(st.k):  # q <- q^2 / sum(q^2): exp((u - hi) / 2^(k - j - 1)), normalised
            (q,) = ops.ready([(q, 2, f"q{j}", ONE)])
            q = _normalise(ops, (q * q).assume_bound(ONE), st, ones, 1.0, f"n{j}")
        diff = ops.add(q, ops.mul(t, -1, ("onehot.neg", ONE)), "onehot", bound=ONE) \
            if not isinstance(t, np.ndarray) else q - t
        return ops.mul(diff, 1.0 / bsz, ("mean", ONE))


#: Known bound of the softmax's values in [0, 1], with room for CKKS noise.
ONE = 1.0 + 2.0 ** -10


def _normalise(ops: Any, w: Any, st: "SoftmaxSteps", rowsum: Any, post: float, site: str) -> Any:
    """``w / (w @ rowsum) * post``: the row sums (or means) by a plaintext product, 1/x by the
    polynomial and Newton steps of ``st`` (they lie in [st.recip.a, 1])."""
    s = ops.mm(w, rowsum, (site + ".w", ONE)).assume_bound(ONE)
    r = ops.poly(s, st.recip, site + ".s", bound=ONE)
    rb = 1.05 / st.recip.a
    for j in range(st.newton):  # y (2 - s y): y stays in (0, 1 / s] from below
        r, s = ops.ready([(r, 2, f"{site}.r{j}", rb), (s, 2, f"{site}.s{j}", ONE)])
        r = (r * (2.0 - s * r)).assume_bound(rb)
    w, r = ops.ready([(w, 2, site + ".wr", ONE), (r, 2, site + ".rr", rb)])
    q = (w * r).assume_bound(ONE)
    return ops.mul(q, post, (site + ".post", ONE)) if post != 1.0 else q


class SoftmaxSteps(NamedTuple):
    """The softmax approximation of :class:`CrossEntropyLoss` (see the module docstring)."""

    exp: approx.Polynomial  #: exp((x) / 2^(k + squarings)) on [lo - hi, 0]
    squarings: int  #: squarings of exp's polynomial before the first normalisation
    k: int  #: normalised squarings
    recip: approx.Polynomial  #: 1/x on [a, 1]
    newton: int  #: Newton steps after ``recip``


#: Relative precision of 1/x in the normalisations.
RECIP_BITS = 24


@lru_cache(maxsize=64)
def softmax_steps(width: float, n_classes: int, max_depth: int) -> SoftmaxSteps:
    """The steps for centred logits in a range of width ``-width`` (``width`` = lo - hi < 0)."""
    if not (width < 0 and math.isfinite(width)):
        raise ValueError(f"the logit interval must have lo < hi, got lo - hi = {width}")
    if n_classes < 2:
        raise ValueError(f"cross-entropy needs at least 2 classes, got {n_classes}")
    # the fewest halvings k with exp(width / 2^k) >= 1/C: every row mean of e is then >= 1/C
    k = max(0, math.ceil(math.log2(-width / math.log(n_classes))))
    p, sq = exp_relative(width, max_depth, k)
    a = float(2.0 ** math.floor(math.log2(0.9 / n_classes)))  # sums of squares of a distribution: >= 1/C
    rp = approx.chebyshev(lambda t: 1.0 / np.asarray(t), a, 1.0, degree=fits.max_degree(a, 1.0, max_depth))
    grid = np.geomspace(a, 1.0, 4001)
    y, newton = rp(grid), 0
    while float(np.max(np.abs(y * grid - 1.0))) > 2.0 ** -RECIP_BITS:
        if newton >= 12:
            raise ValueError(f"1/x on [{a:g}, 1] does not converge with {max_depth} levels per polynomial")
        y, newton = y * (2.0 - grid * y), newton + 1
    return SoftmaxSteps(p, sq, k, rp, newton)


#: Relative precision of the loss's exp: probabilities are ratios of exps that may be far below 1.
EXP_BITS = 24


@lru_cache(maxsize=64)
def exp_relative(a: float, max_depth: int, halvings: int = 0) -> Tuple[Any, int]:
    """(p, k): exp(x / 2^halvings) = p(x)^(2^k) on [a, 0] within 2^-EXP_BITS *relative* error
    (the fewest squarings; p of the highest degree that fits in ``max_depth`` levels)."""
    top = fits.max_degree(a, 0.0, max_depth)
    x = np.linspace(a, 0.0, 4001)
    f = np.exp(x / 2.0 ** halvings)
    for k in range(0, 20):
        d = 2.0 ** (k + halvings)
        p = approx.chebyshev(lambda t, d=d: np.exp(np.asarray(t, dtype=np.float64) / d), a, 0.0, degree=top)
        y = p(x)
        for _ in range(k):
            y = y * y
        if float(np.max(np.abs(y / f - 1.0))) <= 2.0 ** -EXP_BITS:
            return p, k
    raise ValueError(f"cannot approximate exp on [{a:g}, 0] to {EXP_BITS} bits with {max_depth} levels per step")


def _loss_module(run: Any, criterion: Any) -> Any:
    """The module whose ranges hold the loss's backward sites: the model's root."""
    root = run.root
    return root if hasattr(root, "ranges") else _Root()


def mse_loss(output: Any, target: Any) -> Loss:
    """``MSELoss()(output, target)``."""
    return MSELoss()(output, target)


def cross_entropy(logits: Any, target: Any, *, calibration: Any = None) -> Loss:
    """``CrossEntropyLoss()`` calibrated on ``calibration`` (default: these plaintext logits)."""
    crit = CrossEntropyLoss()
    if calibration is not None:
        crit.calibrate(calibration)
    return crit(logits, target)
