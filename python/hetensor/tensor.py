"""CipherTensor: an encrypted tensor that remembers its shape and context.

Elements are packed row-major into the slots of a batch of ciphertexts (one
C++ allocation). Arithmetic rescales automatically; operands at different
levels are aligned to the lower one.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import interop, ranges, shaping
from ._convert import is_torch_tensor, to_numpy, to_rows


class _Size(int):
    """The element count (numpy's ``x.size``) that is also torch's ``x.size()`` / ``x.size(dim)``."""

    # (int subclasses cannot have __slots__; the shape lives in the instance dict)

    def __new__(cls, shape: Tuple[int, ...]) -> "_Size":
        obj = super().__new__(cls, int(math.prod(shape)))
        obj._shape = shape
        return obj

    def __call__(self, dim: Any = None) -> Any:
        if dim is None:
            return self._shape
        return self._shape[dim]


def _real(x: Any, op: str, what: str) -> float:
    """A real number argument as a float, or TypeError naming the operation."""
    if isinstance(x, (str, bytes, complex)) or x is None:
        raise TypeError(f"{op}: {what} must be a real number, not {type(x).__name__}")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {what} must be a real number, not {type(x).__name__}") from None


def _check_step(k: Any) -> int:
    """A rotation step: an int (numpy ints too), never a float, string or bool."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"rotation steps must be integers, not {k!r} ({type(k).__name__})")
    return int(k)


class CipherTensor:
    """An encrypted real (or complex) tensor.

    Supports ``+ - *`` with another CipherTensor, a scalar, or a numpy/torch
    array (a plaintext, broadcast to this shape), ``/`` by plaintext values,
    unary ``-``, ``@``, indexing and slicing, ``.rotate(k)``, ``.roll(k)`` and
    ``.conjugate()``; numpy ufuncs and torch functions with a CKKS counterpart
    dispatch here (``np.add(X, 1)``, ``torch.cat([X, Y])``, see
    :mod:`hetensor.interop`). ``.level``, ``.scale``, ``.shape``, ``.dtype``
    and ``.device`` (where the ciphertexts are computed, changed with
    ``.to(device)``) describe it; ``.result_device`` is where ``decrypt``
    puts a torch result.
    """

    __slots__ = ("_ctx", "_ct", "_shape", "_complex", "_torch", "_layout", "_tmeta", "_range")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return interop.array_ufunc(self, ufunc, method, inputs, kwargs)

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        return interop.torch_function(cls, func, args, kwargs or {})

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("an encrypted tensor cannot become a numpy array; decrypt it with ctx.decrypt(x)")

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
        obj._tmeta = None  # (dtype, device) of an encrypted torch tensor, for decrypt
        obj._range = None  # tracked [lo, hi] of the elements (hetensor.ranges); None: [-bound, bound]
        return obj

    def _like(self, ct, is_complex: bool = None) -> "CipherTensor":
        out = CipherTensor._wrap(self._ctx, ct, self._shape, self._complex if is_complex is None else is_complex, self._torch, self._layout)
        out._tmeta = self._tmeta
        return out

    def _carry_from(self, other: Any) -> "CipherTensor":
        """Takes the torch dtype and device of ``other`` (results of linalg and shaping ops)."""
        if isinstance(other, CipherTensor) and self._torch and other._torch:
            self._tmeta = other._tmeta
        return self

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
        """Number of elements (an int, as numpy's ``.size``); call it for torch's
        ``.size()`` (the shape) or ``.size(dim)``."""
        return _Size(self._shape)

    def numel(self) -> int:
        """Number of elements (torch)."""
        return int(math.prod(self._shape))

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._shape)

    def dim(self) -> int:
        """Number of dimensions (torch)."""
        return len(self._shape)

    @property
    def dtype(self) -> Any:
        """What ``decrypt`` returns: the torch dtype of an encrypted torch tensor, else
        numpy float64 (complex128 for complex values)."""
        if self._tmeta is not None:
            return self._tmeta[0]
        return np.dtype(np.complex128 if self._complex else np.float64)

    @property
    def device(self) -> Any:
        """Where the ciphertexts live and are computed (the compute device):
        ``"cpu"`` or ``"cuda:N"``, as torch's ``x.device`` after ``x.to(...)``;
        a ``torch.device`` for a tensor encrypted from torch. Where ``decrypt``
        puts a torch result is :attr:`result_device`."""
        name = str(getattr(self._ct, "device", "cpu"))
        torch = sys.modules.get("torch") if self._torch else None
        return torch.device(name) if torch is not None else name

    @property
    def result_device(self) -> Any:
        """Where ``decrypt`` puts the result: the torch device of an encrypted
        torch tensor (``torch.device``), else ``"cpu"`` (numpy). Independent of
        :attr:`device`; change it per call with ``ctx.decrypt(x, device=...)``."""
        if self._tmeta is not None:
            return self._tmeta[1]
        return "cpu"

    def to(self, device: Any) -> "CipherTensor":
        """This tensor with its ciphertexts on ``device`` (``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or a ``torch.device``): a copy of the residues when they
        move, ``self`` when they are there already. On a GPU the ciphertexts
        stay in device memory between operations (arithmetic, rotations,
        polynomials, bootstrapping and the matrix products run there; the
        operands of one operation must live in one place); ``decrypt`` copies
        them back. CUDA devices raise
        RuntimeError where no CUDA backend or GPU exists
        (:func:`hetensor.cuda.parse_device`). :attr:`result_device` is kept."""
        from . import cuda
        from . import _core

        target = cuda.parse_device(device)
        resident = isinstance(self._ct, _core.DeviceCiphertext)
        if target == "cpu":
            if not resident:
                return self
            ct = _core.device_download(self._ct)
        else:
            if resident and str(self._ct.device) == target:
                return self
            host = _core.device_download(self._ct) if resident else self._ct
            ct = _core.device_upload(host, target)
        out = self._like(ct)
        out._range = self._range
        return out

    def limbs(self) -> Any:
        """The raw residues of the ciphertexts, zero-copy: a read-only uint64
        numpy view of shape ``(num_ciphertexts, polys, level + 1, N)`` (polys
        is 2, or 3 before relinearization), in the NTT domain, row i modulo
        the i-th prime of the context. It keeps the ciphertexts alive and
        exports through DLPack (``torch.from_dlpack(x.limbs())``,
        ``np.from_dlpack``); do not write through such an export.

        For residues in CPU backend memory (``x.device`` ``"cpu"`` after
        ``.to``) it is the same numpy view of the backend's memory; on a CUDA
        device it is a ``torch.Tensor`` on that device over the same memory
        (``torch.from_dlpack`` of the ciphertext; needs torch)."""
        if not str(getattr(self._ct, "device", "cpu")).startswith("cpu"):  # residues in CUDA memory
            try:
                import torch
            except ImportError:
                raise ImportError("the limbs of a ciphertext on a CUDA device export as a torch tensor: install "
                                  "torch, or bring the tensor back with x.to('cpu')") from None
            return torch.from_dlpack(self._ct)
        return self._ct.limbs()

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d encrypted tensor")
        return self._shape[0]

    @property
    def level(self) -> int:
        """Multiplications left before the modulus chain is used up."""
        return int(self._ct.level)

    @property
    def scale(self) -> float:
        """The scale Delta of the encoding (value = decoded / Delta)."""
        return float(self._ct.scale)

    @property
    def value_range(self) -> Tuple[float, float]:
        """What the elements may reach, as tracked (see :mod:`hetensor.ranges`):
        the exact min and max at encryption, carried through scalar ops, level
        changes, ``polyval`` and ``bootstrap``; ``(-bound, bound)`` otherwise."""
        return ranges.of(self)

    def assume_bound(self, bound: float) -> "CipherTensor":
        """This tensor with its tracked bound replaced by ``bound`` (|x| <= bound), which the
        caller knows and the tracking cannot show: ``assume_range(-bound, bound)``."""
        b = _real(bound, "assume_bound", "the bound")
        if not (math.isfinite(b) and b > 0):
            raise ValueError(f"assume_bound: the bound must be positive and finite, not {bound!r}")
        return self.assume_range(-b, b)

    def assume_range(self, lo: float, hi: float) -> "CipherTensor":
        """This tensor with its tracked range replaced by [lo, hi], which the caller
        knows and the tracking cannot show. No level, no change to the data.

        The engine tracks worst cases through every product (a Newton step on
        1/sqrt cubes its bound; repeated squarings square it), so a bounded
        iteration can look as if it overflowed, and a polynomial fitted on an
        interval can look as if it would blow up outside it. A layer that knows
        its values (calibration, or the function it computed) states them. A
        wrong range is the caller's error: what relies on it (``polyval``,
        ``bootstrap``) then gives meaningless values.

        The tracked bound becomes max(|lo|, |hi|) and the tracked interval of a
        real tensor its intersection with [lo, hi]. Raises ``ValueError`` when
        lo > hi, either is not finite, the bound is too large for the tensor's
        level and scale, or [lo, hi] misses the whole tracked
        :attr:`value_range` (a contradiction).
        """
        a, b = _real(lo, "assume_range", "lo"), _real(hi, "assume_range", "hi")
        if not (math.isfinite(a) and math.isfinite(b) and a <= b):
            raise ValueError(f"assume_range: need finite lo <= hi, not [{lo!r}, {hi!r}]")
        m = max(abs(a), abs(b))
        if m == 0:
            raise ValueError("assume_range: [0, 0] says every value is 0; use a (tiny) nonzero range")
        if not ranges.fits(self._ctx, self.level, self.scale, m):
            raise ValueError(f"assume_range: values up to {m:g} do not fit a ciphertext at level {self.level} "
                             f"and scale 2^{math.log2(self.scale):.1f}; scale the tensor down first")
        tlo, thi = ranges.of(self)
        if tlo > b or thi < a:
            raise ValueError(f"assume_range([{a:g}, {b:g}]) contradicts the tracked range [{tlo:.6g}, {thi:.6g}]: "
                             f"every value is known to lie outside it")
        out = self._like(self._ct.with_scale(self._ct.scale, m))
        return ranges.with_range(out, None if self._complex else (max(tlo, a), min(thi, b)))

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
        from . import _codec

        return _codec.tensor_bytes(self, compress)

    def save(self, file: Any, *, compress: bool = True) -> None:
        """Write :meth:`to_bytes` to a path or binary file object."""
        from . import _codec

        _codec.write(self.to_bytes(compress=compress), file)

    def __reduce__(self):
        # Unpickling binds to a live context with the same keys (load it first).
        from . import _codec

        return _codec.reduce(self)

    # -- operand handling -------------------------------------------------------
    def _check_peer(self, other: "CipherTensor", op: str) -> None:
        if other._ctx is not self._ctx:
            raise ValueError(f"cannot {op}: the tensors belong to different contexts; encrypt both with one Context")
        if other._shape != self._shape:
            raise ValueError(f"cannot {op}: shapes {self._shape} and {other._shape} differ")
        if self._where() != other._where():
            raise ValueError(f"cannot {op}: the tensors live in different places ({self._where()} and {other._where()}); "
                             "move one with .to(device)")

    def _where(self) -> str:
        """The device, and whether the residues are in backend (device) memory or host memory."""
        return str(self.device) + (" backend memory" if hasattr(self._ct, "device") else " host memory")

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

    def _scalar(self, other: Any, op: str) -> float:
        """A real scalar operand as a float: finite, and (for sums) small enough for this level."""
        try:
            c = float(other)
        except OverflowError:
            c = math.inf
        if not math.isfinite(c):
            raise ValueError(f"cannot {op}: the scalar {str(other)[:24]}... is not a finite float64")
        if op in ("add", "subtract"):
            q = self._ctx._engine.q
            bits = sum(math.log2(q[i]) for i in range(min(self.level, 2) + 1)) - 1 - math.log2(self.scale)
            if abs(c) >= 2.0 ** bits:
                raise ValueError(f"cannot {op} {c:g}: at level {self.level} and scale 2^{math.log2(self.scale):.0f} "
                                 f"an encrypted value must stay below 2^{bits:.0f} (about {2.0 ** bits:.3g}); "
                                 f"scale the data down (multiply by a small constant) before adding large constants")
        return c

    def _fills_slots(self) -> bool:
        return self.size == self.num_ciphertexts * self._ctx.slots

    # -- arithmetic -------------------------------------------------------------
    def _aligned_to_plain(self, pt: Any, op: str, purpose: str) -> Tuple["CipherTensor", Any]:
        """This tensor brought to the level a PlainTensor was encoded for, and the encoding."""
        if pt.context is not self._ctx:
            raise ValueError(f"cannot {op}: the plaintext was encoded by another context")
        if self._layout is not None and not self._layout.same_slots(getattr(pt, "_layout", None)):
            raise ValueError(f"cannot {op}: the tensor has a matrix layout and the plaintext was encoded row-major; "
                             "pass the numpy/torch array instead (it is packed in the tensor's layout)")
        if pt.shape != self._shape:
            raise ValueError(f"cannot {op}: shapes {self._shape} and {pt.shape} differ")
        if pt.purpose == "auto":  # a ciphertext above the plaintext's level comes down; one below gets its encoding
            me = self if pt.level >= self.level else self.level_to(pt.level)
            return me, pt._encoded_for(purpose, me.level)
        if pt.purpose != purpose:
            raise ValueError(f"cannot {op}: the plaintext was encoded with purpose='{pt.purpose}'; encode it with purpose='{purpose}'")
        if pt.level > self.level:
            raise ValueError(f"cannot {op}: the plaintext is encoded for level {pt.level} but the tensor is at level {self.level}; encode it with level={self.level}")
        return (self if pt.level == self.level else self.level_to(pt.level)), pt._pt

    def _add(self, other: Any, subtract: bool, reverse: bool) -> "CipherTensor":
        eng = self._ctx._engine
        op = "subtract" if subtract else "add"
        from .plain import PlainTensor

        if isinstance(other, PlainTensor):
            me, pt = self._aligned_to_plain(other, op, "add")
            return self._like(eng.add_plain(me._ct, pt, subtract, reverse), self._complex or other._complex)
        if isinstance(other, CipherTensor):
            self, other = self._align_peer(other, op)
            a, b = (other, self) if reverse else (self, other)
            ct = eng.sub(a._ct, b._ct) if subtract else eng.add(a._ct, b._ct)
            return self._like(ct, self._complex or other._complex)
        if self._is_scalar(other) and not isinstance(other, complex):
            other = self._scalar(other, op)
        if self._is_scalar(other) and not isinstance(other, complex) and self._fills_slots():
            c = other
            base = eng.negate(self._ct) if reverse and subtract else self._ct
            c = -c if subtract and not reverse else c
            return ranges.with_range(self._like(eng.add_scalar(base, c)), ranges.shifted(self, c, reverse and subtract))
        if self._is_scalar(other) and not isinstance(other, complex) and abs(other) * self.scale >= 2.0 ** 61:
            # Too large for an encoded plaintext (64-bit coefficients): add it to every slot,
            # then zero the padding again (one level).
            base = eng.negate(self._ct) if reverse and subtract else self._ct
            full = eng.add_scalar(base, -other if subtract and not reverse else other)
            mask, _ = to_rows(np.ones(self.size), self._ctx.slots)
            return self._like(eng.mul_values(full, mask))
        # Vectors, complex scalars, and scalars on partly filled slots (so the
        # zero padding stays zero) go through an encoded plaintext.
        rows, cplx = self._plain_rows(other, op)
        out = self._like(eng.add_values(self._ct, rows, subtract, reverse), self._complex or cplx)
        if self._is_scalar(other) and not isinstance(other, complex):
            c = -other if subtract and not reverse else other
            ranges.with_range(out, ranges.shifted(self, c, reverse and subtract))
        return out

    def __add__(self, other: Any) -> "CipherTensor":
        return self._add(other, False, False)

    def __radd__(self, other: Any) -> "CipherTensor":
        return self._add(other, False, False)

    def __sub__(self, other: Any) -> "CipherTensor":
        return self._add(other, True, False)

    def __rsub__(self, other: Any) -> "CipherTensor":
        return self._add(other, True, True)

    def __neg__(self) -> "CipherTensor":
        return ranges.with_range(self._like(self._ctx._engine.negate(self._ct)), ranges.scaled(self, -1.0))

    def __mul__(self, other: Any) -> "CipherTensor":
        eng = self._ctx._engine
        from .plain import PlainTensor

        if isinstance(other, PlainTensor):
            me, pt = self._aligned_to_plain(other, "multiply", "multiply")
            return self._like(eng.mul_plain(me._ct, pt), self._complex or other._complex)
        if isinstance(other, CipherTensor):
            self, other = self._align_peer(other, "multiply")
            ct = eng.square(self._ct) if other is self else eng.multiply(self._ct, other._ct)
            return self._like(ct, self._complex or other._complex)
        if self._is_scalar(other) and not isinstance(other, complex):
            c = self._scalar(other, "multiply")
            return ranges.with_range(self._like(eng.mul_scalar(self._ct, c)), ranges.scaled(self, c))
        rows, cplx = self._plain_rows(other, "multiply")
        return self._like(eng.mul_values(self._ct, rows), self._complex or cplx)

    def __rmul__(self, other: Any) -> "CipherTensor":
        return self.__mul__(other)

    def __truediv__(self, other: Any) -> "CipherTensor":
        """Division by a scalar or plaintext array: a product by its reciprocal (one level)."""
        from .plain import PlainTensor

        if isinstance(other, (CipherTensor, PlainTensor)):
            raise TypeError("cannot divide by an encrypted or encoded tensor: CKKS has no division; multiply by "
                            "y.polyval(hetensor.approx.reciprocal(a, b)) for y in [a, b] with 0 < a, or by 1/y in plaintext")
        if self._is_scalar(other):
            if other == 0:
                raise ZeroDivisionError("division of an encrypted tensor by zero")
            return self * (1.0 / other)
        arr = to_numpy(other, what="divisor")
        if np.any(arr == 0):
            raise ZeroDivisionError("the divisor holds zeros")
        return self * (1.0 / arr)

    def __rtruediv__(self, other: Any) -> "CipherTensor":
        raise TypeError("cannot divide by an encrypted tensor: CKKS has no division; use "
                        "x.polyval(hetensor.approx.reciprocal(a, b)) for x in [a, b] with 0 < a")

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

        This shifts all N/2 slots, not the tensor's elements: a tensor smaller
        than a ciphertext takes zeros in from the unused slots (use
        :meth:`roll` for numpy's rotation of the elements). Free of levels.
        Needs the rotation key for ``k`` (see ``Context.generate_rotation_keys``);
        raises :class:`hetensor.MissingKeyError` otherwise.
        """
        return self._like(self._ctx._engine.rotate(self._ct, _check_step(k)))

    def rotate_many(self, steps: Sequence[int]) -> List["CipherTensor"]:
        """Several rotations of this tensor sharing one key-switch decomposition (hoisting)."""
        cts = self._ctx._engine.rotate_hoisted(self._ct, [_check_step(s) for s in steps])
        return [self._like(c) for c in cts]

    def conjugate(self) -> "CipherTensor":
        """Complex conjugate of every slot (needs the conjugation key)."""
        return self._like(self._ctx._engine.conjugate(self._ct))

    def bootstrap(self, *, stc_first: Optional[bool] = None) -> "CipherTensor":
        """Refresh to the context's fresh level; ``stc_first`` chooses the order
        (None: the context's, SlotToCoeff first by default: the input must be at
        level >= 3). See ``Context.bootstrap``."""
        return self._ctx.bootstrap(self, stc_first=stc_first)._carry_from(self)

    def level_to(self, level: int) -> "CipherTensor":
        """A copy brought down to ``level`` (levels can only go down)."""
        return ranges.with_range(self._like(self._ctx._engine.level_to(self._ct, int(level))), self._range)

    def polyval(self, poly: Any, *, assume_in_interval: bool = False) -> "CipherTensor":
        """Evaluate a polynomial approximation (see :mod:`hetensor.approx`) on every element.

        ``poly`` is a :class:`hetensor.approx.Polynomial` (Chebyshev basis,
        baby-step giant-step, depth ``ceil(log2(degree + 1))``, one more for
        intervals wider than 3) or a composite one (``exp`` with squarings,
        ``inv_sqrt`` / ``reciprocal`` with Newton steps). Consumes
        ``poly.depth`` levels; the result has the canonical scale of its level.

        The tracked :attr:`value_range` must lie in ``poly.interval``;
        otherwise ``ValueError`` (build the approximation on a wider interval,
        or scale the input). ``assume_in_interval=True`` is for values the
        caller knows to lie in the interval (calibrated data) when the tracking
        cannot show it: elements in the interval come out right, elements
        outside it get meaningless values, and the call is still refused when
        the polynomial on the tracked range would overflow the ciphertext
        (which would corrupt every slot). Also raises ``ValueError`` when the
        tensor has fewer levels than ``poly.depth`` (the message gives both counts).
        """
        from .approx import polyval

        return polyval(self, poly, assume_in_interval=assume_in_interval)

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

        return matmul(self, other)._carry_from(self)

    def __rmatmul__(self, other: Any) -> "CipherTensor":
        from .linalg import matmul

        return matmul(other, self)._carry_from(self)

    def matmul(self, other: Any, *, method: Any = None, return_cost: bool = False) -> Any:
        """``self @ other``; ``return_cost=True`` also returns the :class:`hetensor.linalg.MatmulCost`."""
        from .linalg import matmul

        return matmul(self, other, method=method, return_cost=return_cost)

    @property
    def T(self) -> "CipherTensor":
        """Transpose of the last two dimensions: free (the layout records it)."""
        from .linalg import transpose

        return transpose(self)._carry_from(self)

    def sum(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None,
            dtype: Any = None, out: Any = None) -> "CipherTensor":
        """Sum over ``dim`` (an int, a tuple, or None for all) by rotate-and-sum:
        log2 of the summed length rotations, no level (one when the padding
        holds partial sums and must be cleared first).

        numpy's keywords work too (``axis``, ``keepdims``), so ``np.sum(X, axis=0)``
        dispatches here. The result has a matrix layout; ``ctx.rotation_steps_for("sum", x, dim)``
        lists the keys (x itself, or its shape with ``layouts=``).
        """
        from .linalg import tensor_sum

        dim, keepdim = _reduce_args("sum", dim, keepdim, axis, keepdims, dtype, out)
        return tensor_sum(self, dim, keepdim)._carry_from(self)

    def mean(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None,
             dtype: Any = None, out: Any = None) -> "CipherTensor":
        """Mean over ``dim`` (as :meth:`sum`, then a product by 1/count: one more level)."""
        dim, keepdim = _reduce_args("mean", dim, keepdim, axis, keepdims, dtype, out)
        dims = range(self.ndim) if dim is None else (dim if isinstance(dim, (tuple, list)) else (dim,))
        try:
            count = math.prod(self._shape[int(d)] for d in dims)
        except IndexError:
            raise ValueError(f"dim {dim} out of range for a tensor of {self.ndim} dimension(s)") from None
        return self.sum(dim, keepdim) * (1.0 / count)

    # -- indexing and shapes (hetensor.shaping: costs there) -----------------------
    def __getitem__(self, key: Any) -> "CipherTensor":
        """``x[0]``, ``x[:, :4]``, ``x[::-1]``, ``x[[2, 0]]``: numpy's basic and integer-array indexing.

        Returns a new flat tensor. Free when the selection is whole ciphertexts
        of the batch; otherwise one level, one plaintext product per distinct
        slot shift and about 2 sqrt(shifts) rotations, whose keys
        ``ctx.rotation_steps_for("getitem", x.shape, key)`` lists.
        """
        return shaping.getitem(self, key)

    def __iter__(self):
        raise TypeError("iterating an encrypted tensor would make one masked copy per element; "
                        "index the rows you need (x[i]) or decrypt first")

    def reshape(self, *shape: Any) -> "CipherTensor":
        """The same elements in a new shape (one dimension may be -1): free for
        the flat packing; matrix layouts are moved to it (one level)."""
        return shaping.reshape(self, shape)

    def view(self, *shape: Any) -> "CipherTensor":
        """Same as :meth:`reshape` (torch)."""
        return shaping.reshape(self, shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "CipherTensor":
        """Dimensions ``start_dim..end_dim`` merged into one (all by default): a reshape."""
        nd = max(1, self.ndim)
        lo, hi = start_dim % nd, end_dim % nd
        if lo > hi:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self._shape[:lo] + (int(math.prod(self._shape[lo:hi + 1])),) + self._shape[hi + 1:]
        return shaping.reshape(self, shape)

    def roll(self, shifts: Any, dims: Any = None) -> "CipherTensor":
        """``numpy.roll`` / ``torch.roll`` over the tensor's own elements (flattened when
        ``dims`` is None), unlike :meth:`rotate`, which shifts all slots.

        Free of levels when the tensor fills its ciphertext exactly (one rotation);
        otherwise one level and the rotations of :meth:`__getitem__`
        (``ctx.rotation_steps_for("roll", x.shape, shifts, dims)``).
        """
        if dims is None and self._layout is None and self.num_ciphertexts == 1 and self._fills_slots():
            return self.rotate(-_check_step(shifts) % self._ctx.slots) if _check_step(shifts) % self._ctx.slots else self.clone()
        return shaping.roll(self, shifts, dims)

    def clone(self) -> "CipherTensor":
        """A copy of the ciphertexts (the same values, level and scale)."""
        return self._like(self._ct.copy())

    def to_layout(self, layout: Any) -> "CipherTensor":
        """This tensor moved into ``layout`` ("matrix" or a :class:`hetensor.Layout`):
        free when it is already there, one level otherwise."""
        from .layout import Layout
        from .linalg import relayout, to_matrix

        if isinstance(layout, str):
            if layout != "matrix":
                raise ValueError(f"unknown layout {layout!r}")
            return to_matrix(self)._carry_from(self)
        if not isinstance(layout, Layout):
            raise TypeError("layout must be 'matrix' or a hetensor.Layout")
        return relayout(self, layout)._carry_from(self)

    def broadcast_to(self, other: Any) -> "CipherTensor":
        """A row or column vector copied into the layout of ``other`` (a
        CipherTensor or a Layout): one level, log2 rotations."""
        from .layout import Layout
        from .linalg import broadcast_to, to_matrix

        target = other if isinstance(other, Layout) else to_matrix(other)._layout
        return broadcast_to(self, target)._carry_from(self)

    def mask_padding(self) -> "CipherTensor":
        """Zero the slots outside the matrix (one level; free when already clean)."""
        from .linalg import mask_padding

        return mask_padding(self)._carry_from(self)


def _reduce_args(op: str, dim: Any, keepdim: Any, axis: Any, keepdims: Any, dtype: Any, out: Any) -> Tuple[Any, bool]:
    """torch's (dim, keepdim) from torch's or numpy's keywords."""
    if out is not None:
        raise TypeError(f"{op}(..., out=...) is not supported: operations on encrypted tensors make new tensors")
    if dtype is not None:
        raise TypeError(f"{op}(..., dtype=...) is not supported: choose the result's dtype when decrypting "
                        "(ctx.decrypt(x, dtype=...))")
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: give dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if isinstance(dim, list):
        dim = tuple(dim)
    return dim, bool(keepdim)
