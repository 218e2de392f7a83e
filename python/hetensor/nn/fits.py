"""Polynomial approximations of the layers' non-linearities, fitted to calibrated ranges.

Every fit takes the range ``[lo, hi]`` that calibration saw, widens it by the
margin (inputs outside the interval give meaningless results, so the margin is
generous), and keeps each polynomial within ``max_depth`` levels so that it can
run between two bootstraps. Wide dynamic ranges are handled by steps that the
layer runs with the tensor interface (each may be preceded by a bootstrap):

- exp: exp(x / 2^k) by a polynomial on [a, b], then k squarings;
- inverse square root: the input scaled into (0, 1], a polynomial, then Newton
  steps y <- y (3 - x y^2) / 2.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Optional, Tuple

import numpy as np

from .. import approx

#: Depth of one polynomial when nothing else is said: n16-boot has 9 levels
#: after a bootstrap, one of which is kept to scale values into its range.
DEFAULT_MAX_DEPTH = 8

#: Error aimed at by the smooth fits, relative to the function's largest value.
TARGET_BITS = 14

_ERF = np.vectorize(math.erf, otypes=[np.float64])

FUNCTIONS = {
    "relu": lambda x: np.maximum(np.asarray(x, dtype=np.float64), 0.0),
    "gelu": lambda x: 0.5 * np.asarray(x) * (1.0 + _ERF(np.asarray(x, dtype=np.float64) / math.sqrt(2.0))),
    "tanh": lambda x: np.tanh(np.asarray(x, dtype=np.float64)),
}


def widen(lo: float, hi: float, margin: float, floor: float = 0.5) -> Tuple[float, float]:
    """[lo, hi] widened by ``margin`` of its width (at least ``floor`` on each side)."""
    w = max(hi - lo, 0.0)
    pad = max(margin * w, floor)
    return lo - pad, hi + pad


def _depth(a: float, b: float, degree: int) -> int:
    return approx.Polynomial(np.r_[np.zeros(degree), 1.0], a, b).depth


def max_degree(a: float, b: float, max_depth: int) -> int:
    """The largest degree whose evaluation on [a, b] fits in ``max_depth`` levels."""
    d = 1
    while d < approx.MAX_DEGREE and _depth(a, b, 2 * d + 1) <= max_depth:
        d = 2 * d + 1
    if _depth(a, b, d) > max_depth:
        raise ValueError(f"no polynomial on [{a:g}, {b:g}] fits in {max_depth} level(s)")
    return d


@lru_cache(maxsize=256)
def activation(kind: str, a: float, b: float, max_depth: int, degree: Optional[int] = None) -> approx.Polynomial:
    """relu / gelu / tanh on [a, b]: the given degree, or the lowest degree that reaches
    2^-TARGET_BITS of max |f| (relu: the highest that fits, its kink limits every degree)."""
    if kind not in FUNCTIONS:
        raise ValueError(f"unknown activation {kind!r}; one of {sorted(FUNCTIONS)}")
    top = max_degree(a, b, max_depth)
    f = FUNCTIONS[kind]
    if degree is not None:
        if _depth(a, b, int(degree)) > max_depth:
            raise ValueError(f"{kind} of degree {degree} on [{a:g}, {b:g}] needs more than {max_depth} levels")
        top = int(degree)
    if kind == "relu":
        return approx.relu(a, b, degree=top)
    fit = {"gelu": approx.gelu, "tanh": lambda a, b, **kw: approx.chebyshev(f, a, b, **kw)}[kind]
    if degree is not None:
        return fit(a, b, degree=top)
    scale = float(np.max(np.abs(f(np.array([a, b]))))) or 1.0
    best = fit(a, b, degree=top)
    target = scale * 2.0 ** -TARGET_BITS
    if best.max_error <= target:
        lo, hi = 1, top  # the lowest degree that meets the target
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fit(a, b, degree=mid).max_error <= target:
                hi = mid
            else:
                lo = mid
        best = fit(a, b, degree=hi)
    return best


@lru_cache(maxsize=256)
def exp_steps(a: float, b: float, max_depth: int) -> Tuple[approx.Polynomial, int]:
    """(polynomial p on [a, b] of exp(x / 2^k), k): exp(x) = p(x)^(2^k) by k squarings,
    within 2^-TARGET_BITS * exp(b) on [a, b], with the fewest levels overall."""
    best = None
    target = math.exp(b) * 2.0 ** -TARGET_BITS
    top = max_degree(a, b, max_depth)
    for k in range(0, 12):
        f = _exp_over(k)
        p = approx.chebyshev(f, a, b, degree=top)
        if _composite_exp_error(p, k, a, b) <= target:
            lo_d, hi_d = 0, top  # the lowest degree that still meets the target
            while hi_d - lo_d > 1:
                mid = (lo_d + hi_d) // 2
                if _composite_exp_error(approx.chebyshev(f, a, b, degree=mid), k, a, b) <= target:
                    hi_d = mid
                else:
                    lo_d = mid
            p = approx.chebyshev(f, a, b, degree=hi_d)
            cost = p.depth + k
            if best is None or cost < best[2]:
                best = (p, k, cost)
        if best is not None and k > best[2]:
            break
    if best is None:
        raise ValueError(f"cannot approximate exp on [{a:g}, {b:g}] within {max_depth} levels per step")
    return best[0], best[1]


#: Softmax's first exp spans at most this width (after the scores are divided by 2^K):
#: its row sums then lie within a factor n * e^SOFTMAX_SPREAD.
SOFTMAX_SPREAD = 2.0


@lru_cache(maxsize=256)
def softmax_exp(a: float, b: float, max_depth: int) -> Tuple[approx.Polynomial, int]:
    """(polynomial p on [a, b], K): p(x) = exp((x - b) / 2^K) within 2^-(TARGET_BITS + K)
    of its smallest value exp(-(b - a) / 2^K) >= e^-SOFTMAX_SPREAD, K the fewest halvings
    that bring the width under SOFTMAX_SPREAD. softmax(x) is then softmax(x / 2^K)
    squared and renormalised K times; each squaring doubles the relative error, hence
    the K extra bits."""
    if not b > a:
        raise ValueError(f"softmax_exp needs a < b, got [{a:g}, {b:g}]")
    top = max_degree(a, b, max_depth)
    x = np.linspace(a, b, 4001)
    k0 = max(0, math.ceil(math.log2((b - a) / SOFTMAX_SPREAD)))
    for k in range(k0, k0 + 8):  # a low depth may need a narrower range (one more squaring each)
        low = math.exp(-(b - a) / 2.0 ** k)
        target = low * 2.0 ** -(TARGET_BITS + k)
        fx = np.exp((x - b) / 2.0 ** k)

        def f(t, k=k):
            return np.exp((np.asarray(t, dtype=np.float64) - b) / 2.0 ** k)

        f.__name__ = f"exp((x-{b:g})/2^{k})"
        for d in range(1, top + 1):
            p = approx.chebyshev(f, a, b, degree=d)
            if float(np.max(np.abs(p(x) - fx))) <= target:
                return p, k
    raise ValueError(f"cannot approximate exp on [{a:g}, {b:g}] (scaled down by up to 2^{k0 + 7}) "
                     f"within {max_depth} levels")


def _exp_over(k: int) -> Callable:
    def f(x):
        return np.exp(np.asarray(x, dtype=np.float64) / 2.0 ** k)

    f.__name__ = f"exp(x/2^{k})" if k else "exp"
    return f


def _composite_exp_error(p: approx.Polynomial, k: int, a: float, b: float) -> float:
    x = np.linspace(a, b, 4001)
    y = p(x)
    for _ in range(k):
        y = y * y
    return float(np.max(np.abs(y - np.exp(x))))


def newton_inv_sqrt(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1.5 * y - 0.5 * x * y * y * y


def _fewest_levels(a: float, max_depth: int, f: Callable[[np.ndarray], np.ndarray],
                   newton: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   rel_error: Callable[[np.ndarray, np.ndarray], float], step_levels: int, max_steps: int,
                   positive: bool, what: str) -> Tuple[approx.Polynomial, int]:
    """(polynomial of ``f`` on [a, 1], Newton steps) whose ``rel_error(grid, y)`` is below
    2^-TARGET_BITS on [a, 1], with the fewest levels (a Newton step costs ``step_levels``);
    ``positive``: a polynomial that is not > 0 on the grid is passed over."""
    best = None
    grid = np.geomspace(a, 1.0, 4001)
    top = max_degree(a, 1.0, max_depth)
    for steps in range(0, max_steps):
        for d in sorted({1, 3, 7, 15, 31, 63, top}):
            if d > top:
                continue
            p = approx.chebyshev(f, a, 1.0, degree=d)
            y = p(grid)
            if positive and np.any(y <= 0):
                continue
            for _ in range(steps):
                y = newton(grid, y)
            if rel_error(grid, y) <= 2.0 ** -TARGET_BITS:
                cost = p.depth + step_levels * steps
                if best is None or cost < best[2]:
                    best = (p, steps, cost)
                break
    if best is None:
        raise ValueError(f"cannot approximate {what} on [{a:g}, 1] within {max_depth} levels per step")
    return best[0], best[1]


@lru_cache(maxsize=256)
def inv_sqrt_steps(a: float, max_depth: int) -> Tuple[approx.Polynomial, int]:
    """(polynomial of 1/sqrt(x) on [a, 1], Newton steps) with relative error below
    2^-TARGET_BITS on [a, 1], the fewest levels (a Newton step costs 3)."""
    # wide intervals at few levels: a long linear phase before quadratic convergence (up to 15 steps)
    return _fewest_levels(a, max_depth, lambda t: 1.0 / np.sqrt(t), newton_inv_sqrt,
                          lambda t, y: float(np.max(np.abs(y / (1.0 / np.sqrt(t)) - 1.0))), 3, 16, True, "1/sqrt")


@lru_cache(maxsize=256)
def reciprocal_steps(a: float, max_depth: int) -> Tuple[approx.Polynomial, int]:
    """(polynomial of 1/x on [a, 1], Newton steps y <- y (2 - x y)) with relative error
    below 2^-TARGET_BITS on [a, 1], the fewest levels (a Newton step costs 2)."""
    return _fewest_levels(a, max_depth, lambda t: 1.0 / np.asarray(t), lambda t, y: y * (2.0 - t * y),
                          lambda t, y: float(np.max(np.abs(y * t - 1.0))), 2, 10, False, "1/x")
