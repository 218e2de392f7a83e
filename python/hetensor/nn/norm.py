"""LayerNorm for encrypted tensors: products for the statistics, a polynomial
and Newton steps for the inverse square root.

    c = x (I - J/n)                      centring: one CPMM, one level
    v = (c * c) (J / (n S)) + eps / S    variance over S, copied to every column: two levels
    r = 1 / sqrt(v)                      polynomial on [a, 1] + Newton steps (fits.inv_sqrt_steps)
    y = (c * weight / sqrt(S)) * r + bias

S (the input scaling) is the largest var + eps that calibration saw, with the
margin, so v lies in (0, 1] where the polynomial is fitted. Statistics as
products need no rotate-and-sum of their own and leave v in the layout of x.
"""

from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np

from . import fits
from .module import Module
from .run import DEFAULT_MARGIN


class LayerNorm(Module):
    """Layer normalisation over the last dimension (biased variance, like
    ``torch.nn.LayerNorm``), with calibrated input scaling."""

    def __init__(self, d_model: int, eps: float = 1e-5, *, weight: Any = None, bias: Any = None) -> None:
        super().__init__()
        self.d_model, self.eps = int(d_model), float(eps)
        self.max_depth = fits.DEFAULT_MAX_DEPTH
        self.margin = DEFAULT_MARGIN
        self.register_parameter("weight", np.ones(d_model) if weight is None else np.asarray(weight, dtype=np.float64))
        self.register_parameter("bias", np.zeros(d_model) if bias is None else np.asarray(bias, dtype=np.float64))

    def extra_repr(self) -> str:
        s = f"{self.d_model}, eps={self.eps:g}"
        if "var" in self.ranges:
            p, steps = self.inv_sqrt_steps()
            s += f", var_scale={self.var_scale():.4g}, inv_sqrt: degree {p.degree} on [{p.a:.3g}, 1] + {steps} Newton"
        return s

    def var_scale(self) -> float:
        """S: var + eps is divided by it before the inverse square root."""
        r = self.ranges.get("var")
        return 1.0 if r is None else float(r[1]) * (1.0 + self.margin)

    def inv_sqrt_steps(self) -> Tuple[Any, int]:
        r = self.ranges.get("var")
        if r is None:
            raise ValueError(f"LayerNorm({self.d_model}) is not calibrated: the range of its variance is unknown; "
                             f"calibrate the model (model.calibrate(inputs) or from_torch(..., calibration=inputs))")
        a = max(float(r[0]), self.eps) / self.var_scale() / (1.0 + 4.0 * self.margin)
        a = float(2.0 ** math.floor(math.log2(a)))  # a power of two: fewer distinct fits
        return fits.inv_sqrt_steps(a, int(self.max_depth))

    def forward(self, x: Any, run: Any) -> Any:
        n = self.d_model
        x = run.ready(x, 1, self, "input")
        c = run.matmul(x, run.matrix(self, "center", lambda: np.eye(n) - 1.0 / n))
        c = run.ready(c, 2, self, "centered")
        if run.calibrating:
            v = run.matmul(c * c, np.full((n, n), 1.0 / n)) + self.eps
            run.record(self, "var", v)
            r = 1.0 / np.sqrt(v.numpy())
            return c * (self.weight * r) + self.bias
        S = self.var_scale()
        v = run.matmul(c * c, run.matrix(self, ("var", S), lambda: np.full((n, n), 1.0 / (n * S)))) + self.eps / S
        r = self.inv_sqrt(v, run)
        cg = c * (self.weight / math.sqrt(S))
        cr = self.ranges.get("centered", [-1.0, 1.0])
        cbound = max(abs(cr[0]), abs(cr[1])) * (1.0 + self.margin) * float(np.max(np.abs(self.weight))) / math.sqrt(S)
        p, _ = self.inv_sqrt_steps()
        cg, r = run.ready_many([(cg, 2, "scaled", cbound), (r, 2, "inv_sqrt", 1.05 / math.sqrt(p.a))], self)
        run.save(self, "out", c=c, cg=cg, r=r)
        return cg * r + self.bias

    def inv_sqrt(self, v: Any, run: Any) -> Any:
        """1 / sqrt(v) for v in [a, 1]: the polynomial, then Newton steps."""
        p, steps = self.inv_sqrt_steps()
        v = run.ready(v, p.depth, self, "var_scaled", bound=1.0)
        y = v.polyval(p)
        ys = []
        run.save(self, "inv_sqrt", v=v, ys=ys)  # the backward differentiates the Newton steps exactly
        if steps:
            ybound = 1.05 / math.sqrt(p.a)
            vh = None
            for _ in range(steps):
                y = run.ready(y, 3, self, "newton", bound=ybound)
                ys.append(y)
                if vh is None or vh.level < 2 + run.reserve:
                    vh = run.ready(v, 2, self, "var_scaled", bound=1.0) * -0.5
                # one packing: no change of layout; y stays in (0, ybound] (the engine's own
                # worst-case tracking cubes its bound every step)
                y = ((y * y) * (vh * y) + y * 1.5).assume_bound(ybound)
        return y
