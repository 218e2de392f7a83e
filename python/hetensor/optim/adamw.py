"""AdamW with encrypted moments and the inverse square root by polynomial + Newton."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, Tuple, Union

from ..nn import fits
from ..nn.autograd import Parameter, grad_bound, param_bound
from ..nn.backward import Ops, check_range
from .optimizer import Optimizer


class AdamW(Optimizer):
    """Decoupled weight decay Adam, as in the paper's AdamW-HE:

        p <- (1 - lr wd) p;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
        p <- p - lr m_hat / sqrt(v_hat + eps)        (eps *inside* the root)

    with ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)``. torch's AdamW
    puts eps outside (``/ (sqrt(v_hat) + eps)``); the two agree where
    ``v_hat >> eps``. Under encryption m and v are ciphertexts and
    ``1 / sqrt(v_hat + eps)`` is ``InvSqrt(x) / sqrt(V)`` for
    ``x = (v_hat + eps) / V`` in ``[eps / V, 1]``: a polynomial plus Newton
    steps (``hetensor.nn.fits.inv_sqrt_steps``, then ``extra_newton`` more,
    each doubling the bits). ``V = G^2 + eps`` with ``G`` the gradient bound
    from :func:`hetensor.nn.calibrate_training` (twice the largest gradient
    seen). eps sets how wide that interval is: keep ``eps / V`` above ~1e-4
    (the paper: eps = 6e-4 on pre-scaled moments).
    """

    def __init__(self, params: Iterable[Parameter], lr: Union[float, Callable[[int], float]] = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2, *,
                 extra_newton: int = 1, max_depth: int = 0) -> None:
        super().__init__(params, lr)
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0) or not eps > 0 or weight_decay < 0:
            raise ValueError(f"need 0 <= betas < 1, eps > 0, weight_decay >= 0; got {betas}, {eps}, {weight_decay}")
        self.betas, self.eps, self.weight_decay = (b1, b2), float(eps), float(weight_decay)
        self.extra_newton, self.max_depth = int(extra_newton), int(max_depth)

    def inv_sqrt_plan(self, p: Parameter, run: Any) -> Tuple[Any, int, float]:
        """(polynomial, Newton steps, V) of 1 / sqrt(x) on [eps / V, 1] for ``p``."""
        gb = grad_bound(p)
        if gb is None:
            if run.mode == "plain":  # no bootstraps: the range only sets the interval
                g = p.grad
                gb = 2.0 * max(float(abs(g).max()) * p.scale, 1e-12)
            else:
                raise ValueError(f"{p!r} has no calibrated gradient range: run hetensor.nn.calibrate_training "
                                 f"(model, inputs, targets, loss) before training in simulate or encrypted mode")
        V = gb * gb + self.eps
        # a tiny gradient bound (eps dominates): any interval below eps / V will do, but a short one
        # would make the polynomial explode at the edge of the tracked range [-1, 1]
        a = min(self.eps / V, 1.0 / 16)
        a = float(2.0 ** math.floor(math.log2(a)))
        depth = self.max_depth or (run.ctx.usable_levels - 1 if run.ctx is not None else fits.DEFAULT_MAX_DEPTH)
        try:
            poly, steps = fits.inv_sqrt_steps(a, int(depth))
        except ValueError as err:
            raise ValueError(f"AdamW: 1/sqrt on [{a:.3g}, 1] (eps / V with V = G^2 + eps, G = {gb:.3g}) is out of "
                             f"reach: raise eps (now {self.eps:g}) towards 1e-4 G^2 ({err})") from None
        return poly, steps + self.extra_newton, V

    def update(self, p: Parameter, w: Any, g: Any, state: Dict[str, Any], lr: float, run: Any) -> Any:
        s = p.scale
        b1, b2 = self.betas
        t = state["t"] = state.get("t", 0) + 1
        ops = Ops(run, p.module, "opt.")
        poly, steps, V = self.inv_sqrt_plan(p, run)
        G = math.sqrt(V)  # >= the gradient bound
        wb = param_bound(p) * max(1.0, s)
        n = p.name + "."
        g, w = ops.ready([(g, 2, n + "g", G / s), (w, 1, n + "w", wb)])
        if s != 1.0:
            g = ops.mul(g, s, (n + "g", G / s))
        if self.weight_decay:
            w = ops.mul(w, 1.0 - lr * self.weight_decay, (n + "w", wb))
        m, v = state.get("m"), state.get("v")
        g2 = ops.mul(g, g, (n + "g", G), (n + "g", G))
        if m is None:
            m = ops.mul(g, 1.0 - b1, (n + "g", G))
            v = ops.mul(g2, 1.0 - b2, (n + "g2", V))
        else:
            m = ops.add(ops.mul(m, b1, (n + "m", G)), ops.mul(g, 1.0 - b1, (n + "g", G)), n + "m", G)
            v = ops.add(ops.mul(v, b2, (n + "v", V)), ops.mul(g2, 1.0 - b2, (n + "g2", V)), n + "v", V)
        state["m"], state["v"] = m, v
        # x = (v_hat + eps) / V in [eps / V, 1]; 1 / sqrt(v_hat + eps) = InvSqrt(x) / sqrt(V)
        x = ops.mul(v, 1.0 / ((1.0 - b2 ** t) * V), (n + "v", V)) + self.eps / V
        check_range(x, 0.0, 1.0, f"AdamW {p!r}: (v_hat + eps) / V")
        y = ops.poly(x, poly, n + "x", bound=1.0)
        yb = 1.05 / math.sqrt(poly.a)
        for j in range(steps):
            y, x = ops.ready([(y, 3, n + "y", yb), (x, 3, n + "x", 1.0)])
            y = ((y * y) * (x * y * -0.5) + y * 1.5).assume_bound(yb)
        step = ops.mul(m, y, (n + "m", G), (n + "y", yb))
        step = ops.mul(step, -lr * s / ((1.0 - b1 ** t) * G), (n + "step", yb))
        return ops.add(w, step, n + "update", wb)
