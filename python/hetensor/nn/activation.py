"""Activations by polynomials (hetensor.approx) on the calibrated input range.

The interval is the range calibration saw, widened by the margin; the degree
is the lowest that reaches 2^-14 of the function's scale within ``max_depth``
levels (ReLU: the highest that fits; its kink limits every degree, see
``approx.relu``), unless given.
"""

from __future__ import annotations

from typing import Any, Optional

from . import fits
from .module import Module
from .run import DEFAULT_MARGIN


class _Activation(Module):
    kind = ""

    def __init__(self, degree: Optional[int] = None, interval: Optional[tuple] = None) -> None:
        super().__init__()
        self.degree = degree
        self.max_depth = fits.DEFAULT_MAX_DEPTH
        self.margin = DEFAULT_MARGIN
        if interval is not None:
            lo, hi = float(interval[0]), float(interval[1])
            if not lo < hi:
                raise ValueError(f"interval must have lo < hi, not {interval}")
            self.ranges["input"] = [lo, hi]
            self.margin = 0.0

    def extra_repr(self) -> str:
        if "input" not in self.ranges:
            return "uncalibrated"
        p = self.polynomial()
        return f"degree={p.degree}, interval=[{p.a:.3g}, {p.b:.3g}], max_error={p.max_error:.2g}"

    def interval(self) -> tuple:
        r = self.ranges.get("input")
        if r is None:
            raise ValueError(f"{type(self).__name__} is not calibrated: give interval=(lo, hi) or calibrate the model "
                             f"(model.calibrate(inputs) or from_torch(..., calibration=inputs))")
        if self.margin == 0.0:
            return float(r[0]), float(r[1])
        return fits.widen(float(r[0]), float(r[1]), self.margin)

    def polynomial(self) -> Any:
        """The polynomial evaluated in plain, simulate and encrypted mode."""
        a, b = self.interval()
        return fits.activation(self.kind, a, b, int(self.max_depth), self.degree)

    def forward(self, x: Any, run: Any) -> Any:
        if run.calibrating:
            run.record(self, "input", x)
            return type(x)(fits.FUNCTIONS[self.kind](x.numpy()))
        p = self.polynomial()
        x = run.ready(x, p.depth, self, "input")
        run.save(self, "input", x=x)
        return x.polyval(p)


class ReLU(_Activation):
    """max(x, 0) by a minimax polynomial."""

    kind = "relu"


class GELU(_Activation):
    """GELU (the erf form) by a Chebyshev interpolant."""

    kind = "gelu"


class Tanh(_Activation):
    """tanh by a Chebyshev interpolant."""

    kind = "tanh"
