"""CipherTensor: an encrypted tensor that remembers its shape and context.

Elements are packed row-major into the slots of a batch of ciphertexts (one
C++ allocation). Arithmetic rescales automatically; operands at different
levels are aligned to the lower one.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, List, Sequence, Tuple

import numpy as np

from ._convert import is_torch_tensor, to_numpy, to_rows


class CipherTensor:
    """An encrypted real (or complex) tensor.

    Supports ``+ - *`` with another CipherTensor, a scalar, or a numpy/torch
    array (a plaintext, broadcast to this shape), unary ``-``, ``.rotate(k)``
    and ``.conjugate()``. ``.level``, ``.scale`` and ``.shape`` describe it.
    """

    __slots__ = ("_ctx", "_ct", "_shape", "_complex", "_torch", "_layout")
    # numpy defers to our reflected operators (array + tensor -> tensor.__radd__)
    __array_ufunc__ = None
    # and torch does the same for tensor (op) CipherTensor
    __torch_function__ = None

    def __init__(self) -> None:
        raise TypeError("create CipherTensors with Context.encrypt")

    @classmethod
    def _wrap(cls, ctx, ct, shape: Tuple[int, ...], is_complex: bool, torch_out: bool, layout: Any = None) -> "CipherTensor":
        obj = object.__new__(cls)
        obj._ctx = ctx
        obj._ct = ct
        obj._shape = tuple(int(s) for s in shape)
        obj._complex = bool(is_complex)
        obj._torch = bool(torch_out)
        obj._layout = layout  # a hetensor.Layout for matrix packings; None for the flat packing
        return obj

    def _like(self, ct, is_complex: bool = None) -> "CipherTensor":
        return CipherTensor._wrap(self._ctx, ct, self._shape, self._complex if is_complex is None else is_complex, self._torch, self._layout)

    # -- metadata -------------------------------------------------------------
    @property
    def context(self):
        """The Context that encrypted this tensor."""
        return self._ctx

    @property
    def shape(self) -> Tuple[int, ...]:
        """Logical shape of the tensor."""
        return self._shape

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(math.prod(self._shape))

    @property
    def level(self) -> int:
        """Multiplications left before the modulus chain is used up."""
        return int(self._ct.level)

    @property
    def scale(self) -> float:
        """The scale Delta of the encoding (value = decoded / Delta)."""
        return float(self._ct.scale)

    @property
    def num_ciphertexts(self) -> int:
        """Ciphertexts in the batch that holds this tensor."""
        return int(self._ct.batch)

    @property
    def nbytes(self) -> int:
        """Bytes of ciphertext data."""
        return int(self._ct.nbytes)

    @property
    def is_complex(self) -> bool:
        """True when the tensor holds complex values."""
        return self._complex

    def __repr__(self) -> str:
        return (
            f"CipherTensor(shape={self._shape}, level={self.level}, scale=2^{math.log2(self.scale):.2f}, "
            f"ciphertexts={self.num_ciphertexts}{', complex' if self._complex else ''})"
        )

    def decrypt(self) -> Any:
        """Shortcut for ``self.context.decrypt(self)``."""
        return self._ctx.decrypt(self)

    def to_bytes(self, *, compress: bool = True) -> bytes:
        """The ciphertexts with shape, layout, level, scale and bound in hetensor's
        binary format; ``compress`` stores the uniform half of a fresh symmetric
        encryption as seeds. Load with :func:`hetensor.load`."""
        from .serialize import to_bytes

        return to_bytes(self, compress=compress)

    def save(self, file: Any, *, compress: bool = True) -> None:
        """Write :meth:`to_bytes` to a path or binary file object."""
        from .serialize import save

        save(self, file, compress=compress)

    def __reduce__(self):
        # Unpickling binds to a live context with the same keys (load it first).
        from .serialize import reduce

        return reduce(self)

    # -- operand handling -------------------------------------------------------
    def _check_peer(self, other: "CipherTensor", op: str) -> None:
        if other._ctx is not self._ctx:
            raise ValueError(f"cannot {op}: the tensors belong to different contexts; encrypt both with one Context")
        if other._shape != self._shape:
            raise ValueError(f"cannot {op}: shapes {self._shape} and {other._shape} differ")

    def _plain_rows(self, value: Any, op: str) -> Tuple[np.ndarray, bool]:
        if self._layout is not None:
            return self._layout_plain_rows(value, op)
        arr = to_numpy(value, what=f"operand of {op}")
        try:
            arr = np.broadcast_to(arr, self._shape)
        except ValueError:
            raise ValueError(f"cannot {op}: operand shape {arr.shape} does not broadcast to {self._shape}") from None
        rows, count = to_rows(np.ascontiguousarray(arr).reshape(-1), self._ctx.slots)
        if count != self.num_ciphertexts:
            raise ValueError(f"cannot {op}: layout mismatch ({count} rows for {self.num_ciphertexts} ciphertexts)")
        return rows, np.iscomplexobj(arr)

    @staticmethod
    def _is_scalar(x: Any) -> bool:
        return isinstance(x, numbers.Number) and not isinstance(x, bool) or isinstance(x, (bool, np.bool_))

    def _fills_slots(self) -> bool:
        return self.size == self.num_ciphertexts * self._ctx.slots

    # -- arithmetic -------------------------------------------------------------
    def _aligned_to_plain(self, pt: Any, op: str, purpose: str) -> "CipherTensor":
        """This tensor brought to the level a PlainTensor was encoded for."""
        if pt.context is not self._ctx:
            raise ValueError(f"cannot {op}: the plaintext was encoded by another context")
        if self._layout is not None and not self._layout.same_slots(getattr(pt, "_layout", None)):
            raise ValueError(f"cannot {op}: the tensor has a matrix layout and the plaintext was encoded row-major; "
                             "pass the numpy/torch array instead (it is packed in the tensor's layout)")
        if pt.shape != self._shape:
            raise ValueError(f"cannot {op}: shapes {self._shape} and {pt.shape} differ")
        if pt.purpose != purpose:
            raise ValueError(f"cannot {op}: the plaintext was encoded with purpose='{pt.purpose}'; encode it with purpose='{purpose}'")
        if pt.level > self.level:
            raise ValueError(f"cannot {op}: the plaintext is encoded for level {pt.level} but the tensor is at level {self.level}; encode it with level={self.level}")
        return self if pt.level == self.level else self.level_to(pt.level)

    def _add(self, other: Any, subtract: bool, reverse: bool) -> "CipherTensor":
        eng = self._ctx._engine
        op = "subtract" if subtract else "add"
        from .plain import PlainTensor

        if isinstance(other, PlainTensor):
            me = self._aligned_to_plain(other, op, "add")
            return self._like(eng.add_plain(me._ct, other._pt, subtract, reverse), self._complex or other._complex)
        if isinstance(other, CipherTensor):
            self, other = self._align_peer(other, op)
            a, b = (other, self) if reverse else (self, other)
            ct = eng.sub(a._ct, b._ct) if subtract else eng.add(a._ct, b._ct)
            return self._like(ct, self._complex or other._complex)
        if self._is_scalar(other) and not isinstance(other, complex) and self._fills_slots():
            c = float(other)
            if not math.isfinite(c):
                raise ValueError(f"cannot {op}: the scalar is not finite")
            base = eng.negate(self._ct) if reverse and subtract else self._ct
            return self._like(eng.add_scalar(base, -c if subtract and not reverse else c))
        # Vectors, complex scalars, and scalars on partly filled slots (so the
        # zero padding stays zero) go through an encoded plaintext.
        rows, cplx = self._plain_rows(other, op)
        return self._like(eng.add_values(self._ct, rows, subtract, reverse), self._complex or cplx)

    def __add__(self, other: Any) -> "CipherTensor":
        return self._add(other, False, False)

    def __radd__(self, other: Any) -> "CipherTensor":
        return self._add(other, False, False)

    def __sub__(self, other: Any) -> "CipherTensor":
        return self._add(other, True, False)

    def __rsub__(self, other: Any) -> "CipherTensor":
        return self._add(other, True, True)

    def __neg__(self) -> "CipherTensor":
        return self._like(self._ctx._engine.negate(self._ct))

    def __mul__(self, other: Any) -> "CipherTensor":
        eng = self._ctx._engine
        from .plain import PlainTensor

        if isinstance(other, PlainTensor):
            me = self._aligned_to_plain(other, "multiply", "multiply")
            return self._like(eng.mul_plain(me._ct, other._pt), self._complex or other._complex)
        if isinstance(other, CipherTensor):
            self, other = self._align_peer(other, "multiply")
            ct = eng.square(self._ct) if other is self else eng.multiply(self._ct, other._ct)
            return self._like(ct, self._complex or other._complex)
        if self._is_scalar(other) and not isinstance(other, complex):
            c = float(other)
            if not math.isfinite(c):
                raise ValueError("cannot multiply: the scalar is not finite")
            return self._like(eng.mul_scalar(self._ct, c))
        rows, cplx = self._plain_rows(other, "multiply")
        return self._like(eng.mul_values(self._ct, rows), self._complex or cplx)

    def __rmul__(self, other: Any) -> "CipherTensor":
        return self.__mul__(other)

    def __pow__(self, exponent: int) -> "CipherTensor":
        if not isinstance(exponent, numbers.Integral) or exponent < 1:
            raise ValueError("only positive integer powers are supported")
        result, base, e = None, self, int(exponent)
        while e:  # square-and-multiply: depth ceil(log2(exponent))
            if e & 1:
                result = base if result is None else result * base
            e >>= 1
            if e:
                base = base * base
        return result

    def square(self) -> "CipherTensor":
        """Element-wise square (one level)."""
        return self._like(self._ctx._engine.square(self._ct))

    # -- slots --------------------------------------------------------------------
    def rotate(self, k: int) -> "CipherTensor":
        """Rotate the slot vector of each ciphertext: out[i] = in[(i + k) mod slots].

        Needs the rotation key for ``k`` (see ``Context.generate_rotation_keys``);
        raises :class:`hetensor.MissingKeyError` otherwise.
        """
        return self._like(self._ctx._engine.rotate(self._ct, int(k)))

    def rotate_many(self, steps: Sequence[int]) -> List["CipherTensor"]:
        """Several rotations of this tensor sharing one key-switch decomposition (hoisting)."""
        cts = self._ctx._engine.rotate_hoisted(self._ct, [int(s) for s in steps])
        return [self._like(c) for c in cts]

    def conjugate(self) -> "CipherTensor":
        """Complex conjugate of every slot (needs the conjugation key)."""
        return self._like(self._ctx._engine.conjugate(self._ct))

    def bootstrap(self) -> "CipherTensor":
        """Refresh to the context's fresh level (see ``Context.bootstrap``)."""
        return self._ctx.bootstrap(self)

    def level_to(self, level: int) -> "CipherTensor":
        """A copy brought down to ``level`` (levels can only go down)."""
        return self._like(self._ctx._engine.level_to(self._ct, int(level)))

    def polyval(self, poly: Any) -> "CipherTensor":
        """Evaluate a polynomial approximation (see :mod:`hetensor.approx`) on every element.

        ``poly`` is a :class:`hetensor.approx.Polynomial` (Chebyshev basis,
        baby-step giant-step, depth ``ceil(log2(degree + 1))``, one more for
        intervals wider than 3) or a composite one (``exp`` with squarings,
        ``inv_sqrt`` / ``reciprocal`` with Newton steps). Consumes
        ``poly.depth`` levels; the result has the canonical scale of its level.
        Elements must lie in ``poly.interval``: outside it the result is
        meaningless. Raises ``ValueError`` when the tensor has fewer levels than
        ``poly.depth`` (the message gives both counts).
        """
        from .approx import polyval

        return polyval(self, poly)

    # -- matrices (hetensor.linalg): layouts, products, transpose, sums ---------
    @property
    def layout(self) -> Any:
        """Where the elements sit in the slots: a :class:`hetensor.Layout` for
        matrix packings (``ctx.encrypt(x, layout="matrix")``, products), a
        :class:`hetensor.layout.FlatLayout` for the plain row-major packing."""
        from .linalg import layout_of

        return layout_of(self)

    def _align_peer(self, other: "CipherTensor", op: str) -> Tuple["CipherTensor", "CipherTensor"]:
        """Both operands of an element-wise op in one packing (vectors broadcast)."""
        if self._layout is None and other._layout is None:
            self._check_peer(other, op)
            return self, other
        from .linalg import align

        return align(self, other, op)

    def _layout_plain_rows(self, value: Any, op: str) -> Tuple[np.ndarray, bool]:
        from .linalg import plain_rows

        return plain_rows(self, value, op)

    def __matmul__(self, other: Any) -> "CipherTensor":
        """Matrix product with a CipherTensor, a :class:`hetensor.PlainMatrix` or a
        numpy/torch matrix (see :func:`hetensor.linalg.matmul`; cost in
        ``hetensor.linalg.last_cost()``)."""
        from .linalg import matmul

        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> "CipherTensor":
        from .linalg import matmul

        return matmul(other, self)

    def matmul(self, other: Any, *, method: Any = None, return_cost: bool = False) -> Any:
        """``self @ other``; ``return_cost=True`` also returns the :class:`hetensor.linalg.MatmulCost`."""
        from .linalg import matmul

        return matmul(self, other, method=method, return_cost=return_cost)

    @property
    def T(self) -> "CipherTensor":
        """Transpose of the last two dimensions: free (the layout records it)."""
        from .linalg import transpose

        return transpose(self)

    def sum(self, dim: Any = None, keepdim: bool = False) -> "CipherTensor":
        """Sum over ``dim`` (an int, a tuple, or None for all) by rotate-and-sum:
        log2 of the summed length rotations, no level (one when the padding
        holds partial sums and must be cleared first)."""
        from .linalg import tensor_sum

        return tensor_sum(self, dim, keepdim)

    def to_layout(self, layout: Any) -> "CipherTensor":
        """This tensor moved into ``layout`` ("matrix" or a :class:`hetensor.Layout`):
        free when it is already there, one level otherwise."""
        from .layout import Layout
        from .linalg import relayout, to_matrix

        if isinstance(layout, str):
            if layout != "matrix":
                raise ValueError(f"unknown layout {layout!r}")
            return to_matrix(self)
        if not isinstance(layout, Layout):
            raise TypeError("layout must be 'matrix' or a hetensor.Layout")
        return relayout(self, layout)

    def broadcast_to(self, other: Any) -> "CipherTensor":
        """A row or column vector copied into the layout of ``other`` (a
        CipherTensor or a Layout): one level, log2 rotations."""
        from .layout import Layout
        from .linalg import broadcast_to, to_matrix

        target = other if isinstance(other, Layout) else to_matrix(other)._layout
        return broadcast_to(self, target)

    def mask_padding(self) -> "CipherTensor":
        """Zero the slots outside the matrix (one level; free when already clean)."""
        from .linalg import mask_padding

        return mask_padding(self)
