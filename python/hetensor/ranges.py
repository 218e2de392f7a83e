"""Tracked value ranges: what the elements of an encrypted tensor may reach.

Two trackers, both upper estimates that are never tightened by guessing:

- Every ciphertext carries ``bound`` (C++): |x| <= bound on every slot,
  propagated by every operation, so that an operation refuses a result the
  lowest primes could not hold instead of returning garbage.
- A real CipherTensor may also carry an interval [lo, hi] of its elements:
  set by encryption (the exact min and max; it lives only in the client's
  Python object and is never serialized, since it reveals them) and carried
  through level changes, scalar additions and multiplications, negation,
  polyval and bootstrap. Any other operation falls back to [-bound, bound].

``polyval`` checks the interval against the approximation's, ``bootstrap``
checks the bound against what it accepts (docs/BOOTSTRAP.md).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

Range = Tuple[float, float]


def of(t: Any) -> Range:
    """The tracked interval of a CipherTensor's elements (real part)."""
    b = float(t._ct.bound)
    r = t._range
    if r is None or t._complex:
        return (-b, b)
    return (max(r[0], -b), min(r[1], b))


def of_values(arr: np.ndarray) -> Optional[Range]:
    """The interval of real data about to be encrypted (None for complex or empty data)."""
    if arr.size == 0 or np.iscomplexobj(arr):
        return None
    return (float(np.min(arr)), float(np.max(arr)))


def with_range(t: Any, r: Optional[Range]) -> Any:
    """``t`` with its tracked interval set (None: fall back to the bound)."""
    t._range = None if r is None else (float(r[0]), float(r[1]))
    return t


def shifted(t: Any, c: float, negate: bool = False) -> Range:
    """The interval of c + x (or c - x)."""
    lo, hi = of(t)
    if negate:
        lo, hi = -hi, -lo
    return (lo + c, hi + c)


def scaled(t: Any, c: float) -> Range:
    """The interval of c * x."""
    lo, hi = of(t)
    return (c * lo, c * hi) if c >= 0 else (c * hi, c * lo)


def fits(ctx: Any, level: int, scale: float, magnitude: float) -> bool:
    """Whether values up to ``magnitude`` at ``level`` and ``scale`` can be
    decrypted: the rule the C++ operations enforce (below half the product of
    the lowest min(level + 1, 3) primes, with one bit to spare)."""
    if not math.isfinite(magnitude):
        return False
    q = ctx._engine.q
    cap = sum(math.log2(float(q[i])) for i in range(min(level, 2) + 1))
    return magnitude <= 0 or math.log2(magnitude) + math.log2(scale) < cap - 2
