"""The tensor interface the layers are written against, for plain and simulate mode.

A layer's forward uses only what :class:`hetensor.CipherTensor` offers:
``+ - *`` with a tensor, a scalar or a numpy array, ``@`` with a tensor or a
plaintext matrix on either side, ``.T``, ``.roll_rows(shift, block)``
(:func:`hetensor.linalg.roll_rows`), ``.polyval(approximation)``,
``.bootstrap()``, ``.level`` and ``.shape``. Two numpy-backed classes offer the
same:

- :class:`PlainArray`: float64 values; ``polyval`` evaluates the same
  polynomial as the encrypted run (plain mode, the exact reference of
  encrypted mode); levels are unlimited.
- :class:`SimTensor`: also tracks levels as the encrypted run does (one per
  product, ``depth`` per polynomial) and adds Gaussian noise after each
  operation with the standard deviations of a measured
  :class:`hetensor.nn.noise.NoiseModel` (simulate mode).
"""

from __future__ import annotations

import numbers
from typing import Any, List, Optional, Tuple

import numpy as np

#: Level of a plain-mode tensor: never runs out.
UNLIMITED = 1 << 30


def _is_int(c: float) -> bool:
    return float(c).is_integer() and abs(c) < 2 ** 31


class PlainArray:
    """float64 values with the CipherTensor interface (plain mode)."""

    __array_ufunc__ = None  # numpy defers to our reflected operators
    __slots__ = ("v",)

    def __init__(self, values: Any) -> None:
        self.v = np.asarray(values, dtype=np.float64)

    # -- what the layers read -------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.v.shape)

    @property
    def level(self) -> int:
        return UNLIMITED

    def numpy(self) -> np.ndarray:
        return self.v

    def _new(self, v: np.ndarray, levels: int = 0, kind: str = "", peer: Any = None) -> "PlainArray":
        return PlainArray(v)

    def _value(self, other: Any) -> Any:
        if isinstance(other, PlainArray):
            return other.v
        if isinstance(other, numbers.Number):
            return float(other)
        return np.asarray(other, dtype=np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape})"

    # -- arithmetic ---------------------------------------------------------------
    def __add__(self, other: Any) -> "PlainArray":
        return self._new(self.v + self._value(other), 0, "", other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> "PlainArray":
        return self._new(self.v - self._value(other), 0, "", other)

    def __rsub__(self, other: Any) -> "PlainArray":
        return self._new(self._value(other) - self.v, 0, "", other)

    def __neg__(self) -> "PlainArray":
        return self._new(-self.v)

    def __mul__(self, other: Any) -> "PlainArray":
        free = isinstance(other, numbers.Number) and _is_int(other)
        return self._new(self.v * self._value(other), 0 if free else 1, "" if free else "mul", other)

    __rmul__ = __mul__

    def __matmul__(self, other: Any) -> "PlainArray":
        ct = isinstance(other, PlainArray)
        return self._new(self.v @ self._value(other), 2 if ct else 1, "ccmm" if ct else "cpmm", other)

    def __rmatmul__(self, other: Any) -> "PlainArray":
        return self._new(self._value(other) @ self.v, 1, "cpmm", other)

    @property
    def T(self) -> "PlainArray":
        return self._new(np.swapaxes(self.v, -1, -2))

    def roll_rows(self, shift: int, block: int) -> "PlainArray":
        """Row ``b * block + t`` becomes row ``b * block + (t + shift) mod block``
        (:func:`hetensor.linalg.roll_rows`: one level, a slot map)."""
        v = self.v.reshape(-1, int(block), *self.v.shape[1:])
        v = np.roll(v, -int(shift), axis=1).reshape(self.v.shape)
        return self._new(v, 1 if shift % block else 0, "cpmm" if shift % block else "")

    def polyval(self, poly: Any) -> "PlainArray":
        return self._new(np.asarray(poly(self.v), dtype=np.float64).reshape(self.v.shape), poly.depth, "poly")

    def bootstrap(self) -> "PlainArray":
        return self

    def assume_bound(self, bound: float) -> "PlainArray":
        return self


class SimTensor(PlainArray):
    """Values, level and CKKS noise as predicted by a noise model (simulate mode)."""

    __slots__ = ("lv", "model", "rng")

    def __init__(self, values: Any, level: int, model: Any, rng: Optional[np.random.Generator] = None) -> None:
        super().__init__(values)
        self.lv = int(level)
        self.model = model
        self.rng = rng if rng is not None else np.random.default_rng()

    @property
    def level(self) -> int:
        return self.lv

    def _new(self, v: np.ndarray, levels: int = 0, kind: str = "", peer: Any = None) -> "SimTensor":
        lv = self.lv
        if isinstance(peer, SimTensor):
            lv = min(lv, peer.lv)
        lv -= levels
        if lv < 0:
            raise ValueError(f"cannot {kind or 'compute'}: the simulated tensor has no levels left; bootstrap it first")
        sigma = self.model.sigma(kind) if kind else 0.0
        if sigma:
            v = v + self.rng.normal(0.0, sigma, size=np.shape(v))
        return SimTensor(v, lv, self.model, self.rng)

    def polyval(self, poly: Any) -> "SimTensor":
        if self.lv < poly.depth:
            raise ValueError(f"cannot evaluate the polynomial: it needs {poly.depth} levels, the simulated tensor has {self.lv}")
        return super().polyval(poly)

    def bootstrap(self) -> "SimTensor":
        if self.lv < self.model.boot_input_level:
            raise ValueError(f"cannot bootstrap: the simulated tensor is at level {self.lv}, below the bootstrap's "
                             f"input level {self.model.boot_input_level}")
        v = self.v + self.rng.normal(0.0, self.model.sigma("boot"), size=self.v.shape)
        return SimTensor(v, self.model.fresh_level, self.model, self.rng)


class CipherArray:
    """A :class:`hetensor.CipherTensor` seen through the same interface (encrypted mode).

    Every operation is the CipherTensor's own. While a model compiles
    (``make_keys``), an operation that raises ``MissingKeyError`` gets its keys
    made and is retried, so one traced forward collects every key."""

    __array_ufunc__ = None
    __slots__ = ("t", "make_keys")

    def __init__(self, t: Any, make_keys: bool = False) -> None:
        self.t = t
        self.make_keys = make_keys

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.t.shape)

    @property
    def level(self) -> int:
        return int(self.t.level)

    def __repr__(self) -> str:
        return f"CipherArray({self.t!r})"

    def _do(self, fn: Any) -> "CipherArray":
        from ..errors import MissingKeyError

        while True:
            try:
                return CipherArray(fn(), self.make_keys)
            except MissingKeyError as err:
                if not (self.make_keys and err.steps):
                    raise
                self.t.context.generate_rotation_keys(err.steps)

    @staticmethod
    def _u(other: Any) -> Any:
        return other.t if isinstance(other, CipherArray) else other

    def __add__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self.t + self._u(o))

    def __radd__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self._u(o) + self.t)

    def __sub__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self.t - self._u(o))

    def __rsub__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self._u(o) - self.t)

    def __neg__(self) -> "CipherArray":
        return self._do(lambda: -self.t)

    def __mul__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self.t * self._u(o))

    __rmul__ = __mul__

    def __matmul__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self.t @ self._u(o))

    def __rmatmul__(self, o: Any) -> "CipherArray":
        return self._do(lambda: self._u(o) @ self.t)

    @property
    def T(self) -> "CipherArray":
        return self._do(lambda: self.t.T)

    def roll_rows(self, shift: int, block: int) -> "CipherArray":
        from ..linalg import roll_rows

        return self._do(lambda: roll_rows(self.t, shift, block)._carry_from(self.t))

    def polyval(self, poly: Any) -> "CipherArray":
        # the interval comes from calibration (with a margin); the worst-case tracking can be
        # far wider (a degree-31 fit evaluated there would seem to overflow), so state it
        return self._do(lambda: self.t.assume_range(poly.a, poly.b).polyval(poly, assume_in_interval=True))

    def bootstrap(self) -> "CipherArray":
        return self._do(lambda: self.t.bootstrap())

    @staticmethod
    def bootstrap_many(items: List["CipherArray"]) -> List["CipherArray"]:
        """Refresh several tensors two real ciphertexts per (complex-packed) bootstrap."""
        ctx = items[0].t.context
        return [CipherArray(t, items[0].make_keys) for t in ctx.bootstrap_many([x.t for x in items])]

    def assume_bound(self, bound: float) -> "CipherArray":
        """:meth:`hetensor.CipherTensor.assume_bound`: the layer knows the bound
        (calibration, or the function it computed) that the worst-case tracking
        cannot show."""
        return CipherArray(self.t.assume_bound(bound), self.make_keys)
