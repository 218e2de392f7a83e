"""Polynomial approximations of functions, for evaluation on encrypted tensors.

CKKS can only add and multiply, so a non-linear function is replaced by a
polynomial that is close to it on an interval ``[a, b]``::

    >>> import numpy as np, hetensor as ht
    >>> from hetensor import approx
    >>> p = approx.exp(-8, 0, target_error=1e-4)          # degree chosen for the error
    >>> p.degree, p.depth, p.max_error < 1e-4              # doctest: +SKIP
    (15, 4, True)
    >>> ctx = ht.Context.from_preset("toy-insecure")
    >>> y = ctx.encrypt(np.linspace(-8, 0, 16)).polyval(p)  # consumes p.depth levels

Every approximation knows its interval, degree, depth (the levels that
:meth:`CipherTensor.polyval` consumes) and ``max_error``, the largest
``|approximation - f|`` measured on a dense grid of ``[a, b]`` in float64.
Encrypted results are within ``max_error`` plus the CKKS noise (about 2^-25
at the default 40-bit scale).

**Inputs must lie in ``[a, b]``, and polyval checks it.** A polynomial
grows fast outside its interval (a degree-d Chebyshev polynomial like
``(2|y|)^d``), so such inputs give meaningless results, and values so large
that the ciphertext cannot hold them corrupt every slot. ``polyval`` compares
the tensor's tracked range (:attr:`CipherTensor.value_range`, see
:mod:`hetensor.ranges`) with ``[a, b]`` and raises ``ValueError`` when it
is not inside (up to 2^-12 of the half-width, for the noise). Fix it by
choosing an interval that covers the range, or by scaling the input; when
the values are known to lie in ``[a, b]`` but the tracking cannot show it
(calibrated activations), ``polyval(p, assume_in_interval=True)`` skips the
range check: elements outside then get meaningless values, and the call is
still refused when the polynomial on the tracked range would overflow the
ciphertext (which would corrupt every slot).

Polynomials live in the Chebyshev basis of their interval and are evaluated
by baby-step giant-step with depth ``ceil(log2(degree + 1))``; intervals wider
than 3 cost one more level for the change of variable to ``[-1, 1]`` (fold the
scaling into an earlier linear layer to save it). Composite approximations
(``exp`` with repeated squaring, ``inv_sqrt`` and ``reciprocal`` with Newton
steps) add their own levels, included in ``depth``.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import numpy as np
from numpy.polynomial import chebyshev as _cheb

from . import _core

__all__ = [
    "Approximation",
    "Polynomial",
    "Composite",
    "chebyshev",
    "exp",
    "inv_sqrt",
    "reciprocal",
    "relu",
    "gelu",
    "sigmoid",
]

#: Largest degree that a target error may lead to.
MAX_DEGREE = 1023

#: With neither a degree nor a target error: the lowest degree up to
#: DEFAULT_MAX_DEGREE (depth 6) whose max error is below DEFAULT_TARGET_ERROR
#: (about the precision of a CKKS product at a 40-bit scale), else that degree.
DEFAULT_TARGET_ERROR = 2.0 ** -20
DEFAULT_MAX_DEGREE = 63


# -- helpers ------------------------------------------------------------------

def _vectorized(f: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """f as a function of float64 arrays (f may be a scalar function)."""

    def g(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        try:
            y = np.asarray(f(x), dtype=np.float64)
            if y.shape == x.shape:
                return y
        except Exception:
            pass
        return np.array([float(f(float(v))) for v in x.reshape(-1)], dtype=np.float64).reshape(x.shape)

    return g


def _check_interval(a: float, b: float) -> Tuple[float, float]:
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)) or not a < b:
        raise ValueError(f"the interval [{a}, {b}] must be finite with a < b")
    return a, b


def _grid(a: float, b: float, degree: int = 0) -> np.ndarray:
    """A dense grid of [a, b]: uniform points and Chebyshev-clustered points."""
    n = max(20001, 40 * (degree + 1))
    t = np.cos(np.linspace(0.0, math.pi, max(4001, 8 * (degree + 1))))
    x = np.concatenate([np.linspace(a, b, n), 0.5 * (b - a) * t + 0.5 * (a + b)])
    return np.unique(np.clip(x, a, b))


def _to_y(x, a: float, b: float):
    return (2.0 * np.asarray(x, dtype=np.float64) - a - b) / (b - a)


def _clean(coeffs: np.ndarray) -> np.ndarray:
    """Coefficients below 2^-45 of the 1-norm (rounding noise of the
    interpolation, e.g. the odd coefficients of an even function) are set to
    zero and trailing zeros dropped: they change no value by more than ~2^-40
    of the 1-norm, far below the CKKS noise, and cost levels and products."""
    c = np.array(coeffs, dtype=np.float64).reshape(-1)
    if c.size == 0:
        return np.zeros(1)
    if not np.all(np.isfinite(c)):
        raise ValueError("the coefficients must be finite")
    eps = float(np.sum(np.abs(c))) * 2.0 ** -45
    c[np.abs(c) <= eps] = 0.0
    nz = np.nonzero(c)[0]
    return c[: (nz[-1] + 1 if nz.size else 1)].copy()


def _interpolate(g: Callable, a: float, b: float, degree: int) -> np.ndarray:
    """Chebyshev interpolant of g at the degree + 1 Chebyshev nodes of [a, b]."""
    n = degree + 1
    theta = np.pi * (np.arange(n) + 0.5) / n
    fx = g(0.5 * (b - a) * np.cos(theta) + 0.5 * (a + b))
    if not np.all(np.isfinite(fx)):
        raise ValueError("the function is not finite on the interval")
    c = (2.0 / n) * (np.cos(np.outer(np.arange(n), theta)) @ fx)
    c[0] *= 0.5
    return c


def _remez(g: Callable, a: float, b: float, degree: int, start: np.ndarray, iters: int = 40) -> np.ndarray:
    """Minimax refinement by the Remez exchange algorithm on a dense grid, in
    the Chebyshev basis; returns the best coefficients seen (never worse than
    `start` on the grid).

    A function that is even (or odd) apart from a low-degree part, like relu
    = x/2 + |x|/2, makes a symmetric reference degenerate (the alternating
    signs only see the exactly representable part); the working degree is then
    raised by one so that the signs have the parity of the hard part, and the
    extra coefficient, zero by symmetry, is dropped at the end.
    """
    start = np.asarray(start, dtype=np.float64)
    work = degree
    if start.size >= 4:  # parity in y = (2x - a - b) / (b - a), read off the interpolant
        norm = float(np.sum(np.abs(start))) or 1.0
        odd_k = np.abs(start[3::2]).max(initial=0.0)
        even_k = np.abs(start[2::2]).max(initial=0.0)
        if odd_k <= 1e-9 * norm and degree % 2 == 0:
            work = degree + 1  # even hard part: needs an odd working degree
        elif even_k <= 1e-9 * norm and degree % 2 == 1:
            work = degree + 1  # odd hard part: needs an even working degree
    n = work + 2
    gy = np.unique(np.concatenate([np.cos(np.linspace(0.0, math.pi, max(6000, 60 * n))),
                                   np.linspace(-1.0, 1.0, max(6000, 60 * n))]))
    fg = g(0.5 * (b - a) * gy + 0.5 * (a + b))

    def err_of(c):
        return _cheb.chebval(gy, c) - fg

    best = start.copy()
    best_err = float(np.max(np.abs(err_of(best))))
    ref = np.sort(np.cos(np.pi * np.arange(n) / (n - 1)))
    signs = (-1.0) ** np.arange(n)  # E's own sign absorbs which sign comes first
    for _ in range(iters):
        A = np.hstack([_cheb.chebvander(ref, work), signs[:, None]])
        try:
            sol = np.linalg.solve(A, g(0.5 * (b - a) * ref + 0.5 * (a + b)))
        except np.linalg.LinAlgError:
            break
        c, level = sol[:-1][: degree + 1], abs(sol[-1])
        e = err_of(c)
        m = float(np.max(np.abs(e)))
        if m < best_err:
            best, best_err = c, m
        if m - level <= 1e-4 * m:
            break
        # New reference: one extremum per run of constant sign, then the n
        # consecutive ones (around the largest error) with the largest sum.
        nz = e != 0
        ys, es = gy[nz], e[nz]
        cuts = np.nonzero(np.diff(np.sign(es)))[0] + 1
        bounds = np.concatenate([[0], cuts, [es.size]])
        idx = np.array([lo + int(np.argmax(np.abs(es[lo:hi]))) for lo, hi in zip(bounds[:-1], bounds[1:])])
        if idx.size < n:
            break
        mags = np.abs(es[idx])
        top = int(np.argmax(mags))
        starts = range(max(0, top - n + 1), min(top, idx.size - n) + 1)
        s0 = max(starts, key=lambda s: float(np.sum(mags[s : s + n])))
        ref = ys[idx[s0 : s0 + n]]
    return best


def _search_degree(make: Callable[[int], "Approximation"], target_error: Optional[float], what: str,
                   max_degree: int = MAX_DEGREE) -> "Approximation":
    """The approximation of lowest degree (found by doubling then bisection)
    whose max_error meets target_error; target_error None means the defaults
    (DEFAULT_TARGET_ERROR, or the best of degree <= DEFAULT_MAX_DEGREE)."""
    best_effort = target_error is None
    if best_effort:
        target_error, max_degree = DEFAULT_TARGET_ERROR, min(max_degree, DEFAULT_MAX_DEGREE)
    target_error = float(target_error)
    if not target_error > 0:
        raise ValueError("target_error must be > 0")
    cache = {}

    def get(d):
        if d not in cache:
            cache[d] = make(d)
        return cache[d]

    lo, hi = 0, 1
    while get(hi).max_error > target_error:
        lo = hi
        if hi >= max_degree:
            if best_effort:
                return get(max_degree)
            raise ValueError(
                f"cannot reach max error {target_error:g} for {what} with degree <= {max_degree} "
                f"(degree {max_degree} gives {get(max_degree).max_error:.3g}); widen the target or narrow the interval"
            )
        hi = min(2 * hi, max_degree)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if get(mid).max_error <= target_error:
            hi = mid
        else:
            lo = mid
    return get(hi)


def _degree_or_target(degree, target_error) -> None:
    if degree is not None and target_error is not None:
        raise ValueError("give degree or target_error, not both")
    if degree is not None and (not isinstance(degree, (int, np.integer)) or degree < 0):
        raise ValueError(f"degree must be an integer >= 0, not {degree!r}")


# -- approximation objects ----------------------------------------------------------

class Approximation:
    """Base of the approximation objects: interval, degree, depth, max_error,
    plaintext evaluation with ``__call__`` and encrypted evaluation with
    :meth:`hetensor.CipherTensor.polyval`."""

    a: float
    b: float
    name: str
    max_error: float

    @property
    def interval(self) -> Tuple[float, float]:
        """The interval [a, b] on which the approximation is valid."""
        return (self.a, self.b)

    @property
    def degree(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def depth(self) -> int:  # pragma: no cover - overridden
        """Levels consumed by the encrypted evaluation."""
        raise NotImplementedError

    def __call__(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def _evaluate(self, ct, _stats=None):  # pragma: no cover - overridden
        raise NotImplementedError

    def _measure(self, f: Optional[Callable]) -> float:
        if f is None:
            return math.nan
        x = _grid(self.a, self.b, self.degree)
        return float(np.max(np.abs(self(x) - f(x))))


class Polynomial(Approximation):
    """p(x) = sum_k coeffs[k] * T_k((2x - a - b) / (b - a)) on [a, b].

    Attributes: ``a``, ``b``, ``coeffs`` (Chebyshev coefficients), ``degree``,
    ``depth`` (levels consumed on a ciphertext), ``max_error`` (max |p - f| on
    a dense grid of [a, b]; NaN when no function is known), ``func``.
    Coefficients below 2^-45 of the 1-norm are rounding noise and set to zero
    (the odd ones of an even function ...), so ``degree`` is the degree that
    is actually evaluated.
    """

    def __init__(self, coeffs, a: float = -1.0, b: float = 1.0, *, func: Optional[Callable] = None,
                 name: str = "polynomial", max_error: Optional[float] = None) -> None:
        self.a, self.b = _check_interval(a, b)
        self.coeffs = _clean(coeffs)
        self.func = func
        self.name = name
        self.max_error = float(max_error) if max_error is not None else self._measure(
            _vectorized(func) if func is not None else None)

    @property
    def degree(self) -> int:
        return int(self.coeffs.size - 1)

    @property
    def depth(self) -> int:
        return int(_core.chebyshev_eval_depth(self.a, self.b, self.degree))

    def __call__(self, x):
        """p(x) in float64 (numpy arrays or scalars)."""
        out = _cheb.chebval(_to_y(x, self.a, self.b), self.coeffs)
        return float(out) if np.ndim(out) == 0 else out

    def _core_poly(self) -> "_core.ChebyshevPoly":
        return _core.ChebyshevPoly(self.a, self.b, [float(v) for v in self.coeffs])

    def _evaluate(self, ct, _stats=None):
        out, stats = _core.eval_chebyshev(ct._ctx._engine, ct._ct, self._core_poly())
        if _stats is not None:
            _stats["stats"] = stats
        return ct._like(out)

    def evaluate_with_stats(self, ct):
        """``ct.polyval(self)`` that also returns the operation counts
        (``_core.PolyEvalStats``: ct_products, relinearizations, rescales,
        scalar_products, powers, baby_step, levels)."""
        box = {}
        out = polyval(ct, self, _stats=box)
        return out, box.get("stats")

    def __repr__(self) -> str:
        err = "" if math.isnan(self.max_error) else f", max_error={self.max_error:.3g}"
        return f"Polynomial({self.name}, degree={self.degree}, interval=[{self.a:g}, {self.b:g}], depth={self.depth}{err})"


class Composite(Approximation):
    """A polynomial followed by a fixed refinement circuit.

    ``kind`` is one of ``"square"`` (y <- y^2, ``steps`` times: exp by
    repeated squaring), ``"newton_inv_sqrt"`` (y <- y (3 - x y^2) / 2) or
    ``"newton_reciprocal"`` (y <- y (2 - x y)). ``base`` is the first
    polynomial; ``degree`` is its degree.
    """

    KINDS = ("square", "newton_inv_sqrt", "newton_reciprocal")

    def __init__(self, base: Polynomial, kind: str, steps: int, *, func: Optional[Callable] = None,
                 name: str = "composite") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}")
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError("steps must be an integer >= 0")
        self.base = base
        self.kind = kind
        self.steps = int(steps)
        self.a, self.b = base.a, base.b
        self.func = func
        self.name = name
        self.max_error = self._measure(_vectorized(func) if func is not None else None)

    @property
    def degree(self) -> int:
        return self.base.degree

    @property
    def coeffs(self) -> np.ndarray:
        return self.base.coeffs

    @property
    def depth(self) -> int:
        d = self.base.depth
        if self.kind == "square" or self.steps == 0:
            return d + self.steps
        if self.kind == "newton_reciprocal":
            return d + 2 * self.steps
        # y*y and (-x/2)*y in parallel, then their product: 2 levels per step
        # (3 for the first when the base is a constant at the input's level).
        return d + 2 * self.steps + (1 if d == 0 else 0)

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(self.base(x), dtype=np.float64)
        for _ in range(self.steps):
            if self.kind == "square":
                y = y * y
            elif self.kind == "newton_inv_sqrt":
                y = 1.5 * y - 0.5 * x * y * y * y
            else:
                y = y * (2.0 - x * y)
        return float(y) if y.ndim == 0 else y

    def _evaluate(self, ct, _stats=None):
        eng = ct._ctx._engine
        y = self.base._evaluate(ct, _stats)._ct
        if self.kind == "square":
            for _ in range(self.steps):
                y = eng.square(y)
        elif self.kind == "newton_inv_sqrt":
            xh = eng.mul_scalar(ct._ct, -0.5) if self.steps else None
            for _ in range(self.steps):
                t = eng.multiply(eng.square(y), eng.multiply(xh, y))  # -x y^3 / 2
                y = eng.add(t, eng.mul_scalar(y, 1.5))
        else:
            for _ in range(self.steps):
                u = eng.add_scalar(eng.negate(eng.multiply(ct._ct, y)), 2.0)  # 2 - x y
                y = eng.multiply(y, u)
        return ct._like(y)

    def __repr__(self) -> str:
        err = "" if math.isnan(self.max_error) else f", max_error={self.max_error:.3g}"
        return (f"Composite({self.name}, {self.kind} x{self.steps}, degree={self.degree}, "
                f"interval=[{self.a:g}, {self.b:g}], depth={self.depth}{err})")


# -- construction ----------------------------------------------------------------------

def _fit(g: Callable, a: float, b: float, degree: int, minimax: bool) -> np.ndarray:
    c = _interpolate(g, a, b, degree)
    if minimax and degree >= 1:
        c = _remez(g, a, b, degree, c)
    return c


def chebyshev(f: Callable, a: float, b: float, degree: Optional[int] = None, *,
              target_error: Optional[float] = None, minimax: bool = False,
              max_degree: int = MAX_DEGREE) -> Polynomial:
    """Polynomial approximation of ``f`` on ``[a, b]`` in the Chebyshev basis.

    Args:
        f: a function of one real variable (numpy-vectorised or scalar).
        a, b: the interval; polyval refuses inputs whose tracked range leaves it.
        degree: the degree; or
        target_error: the largest acceptable max |p - f| on [a, b]: the
            lowest degree that meets it is chosen (up to ``max_degree``).
            With neither, the lowest degree reaching 2^-20, at most 63 (depth
            6); check ``.max_error``. The named functions below do the same.
        minimax: refine the interpolant by the Remez exchange algorithm, which
            lowers the max error (markedly for functions with kinks, like relu).

    Interpolation at the Chebyshev nodes is within a factor ~(2/pi) log(d) + 1
    of the best polynomial; ``minimax=True`` gets (close to) the best.
    """
    a, b = _check_interval(a, b)
    _degree_or_target(degree, target_error)
    g = _vectorized(f)
    name = getattr(f, "__name__", "f")

    def make(d: int) -> Polynomial:
        return Polynomial(_fit(g, a, b, d, minimax), a, b, func=g, name=name)

    if degree is not None:
        return make(int(degree))
    return _search_degree(make, target_error, name, max_degree)


def _ready(g: Callable, name: str, a: float, b: float, degree, target_error, minimax: bool) -> Polynomial:
    a, b = _check_interval(a, b)
    _degree_or_target(degree, target_error)

    def make(d: int) -> Polynomial:
        return Polynomial(_fit(g, a, b, d, minimax), a, b, func=g, name=name)

    if degree is not None:
        return make(int(degree))
    return _search_degree(make, target_error, name)


def _composite(g_base: Callable, g: Callable, name: str, kind: str, steps: int, a: float, b: float,
               degree, target_error, minimax: bool) -> Approximation:
    a, b = _check_interval(a, b)
    _degree_or_target(degree, target_error)
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"the number of steps must be an integer >= 0, not {steps!r}")

    def make(d: int) -> Approximation:
        base = Polynomial(_fit(g_base, a, b, d, minimax), a, b, func=g_base, name=name)
        if steps == 0:
            return Polynomial(base.coeffs, a, b, func=g, name=name, max_error=base.max_error)
        return Composite(base, kind, steps, func=g, name=name)

    if degree is not None:
        return make(int(degree))
    return _search_degree(make, target_error, name)


def exp(a: float, b: float, degree: Optional[int] = None, *, target_error: Optional[float] = None,
        squarings: int = 0, minimax: bool = False) -> Approximation:
    """exp(x) on [a, b], meant for bounded negative intervals (softmax after
    subtracting the maximum, Gaussian kernels): ``exp(-16, 0, ...)``.

    With ``squarings = k`` a polynomial approximates exp(x / 2^k) and the
    result is squared k times (k more levels): a much lower degree for wide
    intervals. Squaring multiplies the relative error by about 2^k; ``max_error``
    measures the whole composite.
    """
    if b > 64:
        raise ValueError(f"exp on [{a}, {b}] reaches {math.exp(min(b, 700)):.3g}; use an interval with b <= 64")
    k = int(squarings)
    f = np.exp
    base = (lambda x: np.exp(np.asarray(x) / 2.0 ** k)) if k else np.exp
    if k == 0:
        return _ready(f, "exp", a, b, degree, target_error, minimax)
    return _composite(base, f, "exp", "square", k, a, b, degree, target_error, minimax)


def inv_sqrt(a: float, b: float, degree: Optional[int] = None, *, target_error: Optional[float] = None,
             newton_steps: int = 0, minimax: bool = False) -> Approximation:
    """1 / sqrt(x) on [a, b] with 0 < a (layer normalisation).

    ``newton_steps = k`` refines the polynomial by k Newton steps
    y <- y (3 - x y^2) / 2, two levels each; every step roughly squares the
    relative error, so a low-degree start and one or two steps beat a
    high-degree polynomial on wide intervals such as [0.01, 10].
    """
    a, b = _check_interval(a, b)
    if a <= 0:
        raise ValueError(f"inv_sqrt needs an interval of positive numbers, not [{a}, {b}]")
    f = lambda x: 1.0 / np.sqrt(x)
    return _composite(f, f, "inv_sqrt", "newton_inv_sqrt", newton_steps, a, b, degree, target_error, minimax)


def reciprocal(a: float, b: float, degree: Optional[int] = None, *, target_error: Optional[float] = None,
               newton_steps: int = 0, minimax: bool = False) -> Approximation:
    """1 / x on [a, b] with 0 outside [a, b].

    ``newton_steps = k`` refines by k Newton steps y <- y (2 - x y), two
    levels each (the relative error is squared by each step).
    """
    a, b = _check_interval(a, b)
    if a <= 0 <= b:
        raise ValueError(f"reciprocal needs an interval that excludes 0, not [{a}, {b}]")
    f = lambda x: 1.0 / np.asarray(x, dtype=np.float64)
    return _composite(f, f, "reciprocal", "newton_reciprocal", newton_steps, a, b, degree, target_error, minimax)


def relu(a: float, b: float, degree: Optional[int] = None, *, target_error: Optional[float] = None,
         minimax: bool = True) -> Polynomial:
    """max(x, 0) on [a, b]. The kink limits polynomial accuracy to about
    0.14 (b - a) / degree, hence the minimax refinement by default."""
    return _ready(lambda x: np.maximum(np.asarray(x, dtype=np.float64), 0.0), "relu", a, b, degree, target_error,
                  minimax)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(a: float, b: float, degree: Optional[int] = None, *, target_error: Optional[float] = None,
         minimax: bool = False) -> Polynomial:
    """GELU x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (the exact form, not the tanh one) on [a, b]."""
    f = lambda x: 0.5 * np.asarray(x) * (1.0 + _erf(np.asarray(x) / math.sqrt(2.0)))
    return _ready(f, "gelu", a, b, degree, target_error, minimax)


def sigmoid(a: float, b: float, degree: Optional[int] = None, *, target_error: Optional[float] = None,
            minimax: bool = False) -> Polynomial:
    """The logistic function 1 / (1 + exp(-x)) on [a, b]."""
    f = lambda x: 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))
    return _ready(f, "sigmoid", a, b, degree, target_error, minimax)


# -- encrypted evaluation ------------------------------------------------------------------

#: Inputs may exceed [a, b] by this fraction of the half-width (noise, a bootstrap's error).
RANGE_TOLERANCE = 2.0 ** -12

#: With assume_in_interval, how much larger than the in-range values the
#: polynomial may grow on the tracked range before the call is refused.
OUTLIER_GROWTH = 2.0 ** 24


def _chebyshev_growth(k: int, y: float) -> float:
    """|T_k| on [-y, y] for y >= 1: cosh(k acosh y) (inf when it overflows)."""
    try:
        return math.cosh(k * math.acosh(max(y, 1.0)))
    except OverflowError:
        return math.inf


def _magnitude(ap: Approximation, lo: float, hi: float) -> float:
    """An upper estimate of the largest value the evaluation of ``ap`` produces
    (result and intermediate powers) for inputs in [lo, hi] ∪ [a, b]."""
    base = ap.base if isinstance(ap, Composite) else ap
    y = max(abs(_to_y(lo, base.a, base.b)), abs(_to_y(hi, base.a, base.b)), 1.0)
    m = sum(abs(float(c)) * _chebyshev_growth(k, y) for k, c in enumerate(base.coeffs))
    m = max(m, _chebyshev_growth(base.degree, y))
    if isinstance(ap, Composite):
        x = max(abs(lo), abs(hi), abs(ap.a), abs(ap.b))
        for _ in range(ap.steps):
            if ap.kind == "square":
                m = m * m
            elif ap.kind == "newton_inv_sqrt":
                m = 1.5 * m + 0.5 * x * m ** 3
            else:
                m = m * (2.0 + x * m)
            if not math.isfinite(m):
                return math.inf
    return m


def _output_range(ap: Approximation) -> Tuple[float, float]:
    """min and max of the approximation on its interval, with a margin (cached)."""
    r = getattr(ap, "_out_range", None)
    if r is None:
        v = np.asarray(ap(_grid(ap.a, ap.b, ap.degree)), dtype=np.float64)
        lo, hi = float(np.min(v)), float(np.max(v))
        m = 2.0 ** -10 * (hi - lo) + 2.0 ** -16 * max(1.0, abs(lo), abs(hi))
        r = ap._out_range = (lo - m, hi + m)
    return r


def check_range(ct, ap: Approximation, assume_in_interval: bool = False) -> Optional[float]:
    """Checks the tensor's tracked range against the approximation's interval
    (see :func:`polyval`). Returns None when the range is inside, else (with
    ``assume_in_interval``) the largest value the evaluation may produce."""
    from . import ranges

    lo, hi = ranges.of(ct)
    tol = RANGE_TOLERANCE * 0.5 * (ap.b - ap.a)
    if lo >= ap.a - tol and hi <= ap.b + tol:
        return None
    what = f"{ap.name} of degree {ap.degree} on [{ap.a:g}, {ap.b:g}]"
    if not assume_in_interval:
        raise ValueError(
            f"cannot evaluate {what}: the input's tracked range is [{lo:.6g}, {hi:.6g}], which is not inside the "
            f"interval, and outside it the polynomial gives meaningless values. Build the approximation on an "
            f"interval that covers [{lo:.6g}, {hi:.6g}], or scale/shift the input into [{ap.a:g}, {ap.b:g}]; if "
            f"the values are known to lie in the interval (calibrated data), pass assume_in_interval=True")
    m = _magnitude(ap, lo, hi)
    out_level = ct.level - ap.depth
    # CKKS errors (and float64 decoding) grow with the largest value in a
    # ciphertext, about 2^-55 of it in every slot: cap the outliers at 2^24 times
    # the values in range, and at what the output level can hold at all.
    typical = max(1.0, *(abs(v) for v in _output_range(ap)))
    if m > OUTLIER_GROWTH * typical or not ranges.fits(ct._ctx, out_level, ct._ctx.scale_at(out_level), m):
        raise ValueError(
            f"cannot evaluate {what}, even with assume_in_interval=True: an element at the edge of the tracked "
            f"range [{lo:.6g}, {hi:.6g}] would make values up to {m:.3g}, which would corrupt every slot "
            f"(overflow at level {out_level}, or errors of about 2^-55 of it in all slots). Bring the input's "
            f"range (its tracked bound) down first, for example by scaling it")
    return m


def polyval(ct, approximation: Approximation, *, assume_in_interval: bool = False,
            _stats: Optional[dict] = None):
    """Evaluates an approximation on every element of a CipherTensor (the
    implementation of :meth:`hetensor.CipherTensor.polyval`).

    Consumes ``approximation.depth`` levels; the result is at the canonical
    scale of its level. Raises ValueError when the tensor has fewer levels, and
    when its tracked range is not inside the interval (:func:`check_range`;
    ``assume_in_interval`` as in :meth:`hetensor.CipherTensor.polyval`). The
    result's tracked range is the approximation's range on its interval.
    Unused slots of a partly filled ciphertext are moved into the interval for
    the evaluation and set back to zero after it (no level).
    """
    if not isinstance(approximation, Approximation):
        raise TypeError(f"polyval takes a hetensor.approx approximation, not {type(approximation).__name__}; "
                        f"make one with hetensor.approx.chebyshev(f, a, b, degree)")
    if ct.is_complex:
        raise ValueError("cannot evaluate a polynomial on a complex tensor: the approximations are real functions "
                         "on a real interval")
    need, have = approximation.depth, ct.level
    if have < need:
        raise ValueError(
            f"cannot evaluate the polynomial: {approximation.name} of degree {approximation.degree} on "
            f"[{approximation.a:g}, {approximation.b:g}] needs {need} levels but the tensor is at level {have} "
            f"({have} levels left); bootstrap it first or lower the degree")
    beyond = check_range(ct, approximation, assume_in_interval)
    eng = ct._ctx._engine
    slots, rows = ct._ctx.slots, ct.num_ciphertexts
    pad = ct.size < rows * slots
    x = ct
    if pad:
        # The unused slots: the tail of the flat packing, or wherever a matrix
        # layout leaves room (rows below the block, unused super-slots).
        layout = getattr(ct, "_layout", None)
        if layout is not None:
            unused = np.real(layout.mask()) == 0
        else:
            unused = np.zeros(rows * slots, dtype=bool)
            unused[ct.size:] = True
            unused = unused.reshape(rows, slots)
        mid = 0.5 * (approximation.a + approximation.b)
        x = ct._like(eng.add_values(ct._ct, np.where(unused, mid, 0.0).astype(np.complex128)))
    out = approximation._evaluate(x, _stats)
    if pad:
        back = np.where(unused, approximation(mid), 0.0).astype(np.complex128)
        out = out._like(eng.add_values(out._ct, back, True, False))
    if beyond is not None:  # elements may lie outside: only the magnitude estimate holds
        return out._like(out._ct.with_scale(out._ct.scale, max(float(out._ct.bound), beyond)))
    out._range = _output_range(approximation)
    return out
