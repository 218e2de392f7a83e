"""PlainTensor: values encoded once for reuse against many ciphertexts.

Encoding (FFT + NTT per prime) costs about as much as the product it feeds; a
weight applied to many inputs should be encoded once with ``ctx.encode``.
"""

from __future__ import annotations

import math
from typing import Any, Tuple


class PlainTensor:
    """Encoded (not encrypted) values bound to a context, a level and a purpose.

    ``purpose="multiply"`` encodes at the scale that makes ``ct * pt`` land on
    the canonical scale after the rescale; ``purpose="add"`` at the
    ciphertext scale of that level. ``purpose="auto"`` (the default of
    ``ctx.encode``) keeps the values and encodes each (purpose, level) it
    meets once.
    """

    __slots__ = ("_ctx", "_pt", "_shape", "_purpose", "_complex", "_rows", "_variants")

    def __init__(self) -> None:
        raise TypeError("create PlainTensors with Context.encode")

    @classmethod
    def _wrap(cls, ctx, pt, shape: Tuple[int, ...], purpose: str, is_complex: bool) -> "PlainTensor":
        obj = object.__new__(cls)
        obj._ctx, obj._pt, obj._shape, obj._purpose, obj._complex = ctx, pt, tuple(shape), purpose, is_complex
        obj._rows, obj._variants = None, {}
        return obj

    def _keep(self, rows: Any, purpose: str) -> None:
        """Keeps the slot values (purpose "auto"); the encoding made now serves ``purpose``."""
        self._rows = rows
        self._variants[(purpose, int(self._pt.level))] = self._pt

    def _encoded_for(self, purpose: str, level: int) -> Any:
        """The encoding for ``purpose`` at ``level`` (purpose "auto" only), made once."""
        key = (purpose, int(level))
        pt = self._variants.get(key)
        if pt is None:
            if purpose == "multiply" and level < 1:
                raise ValueError("cannot multiply by a plaintext at level 0 (the product is rescaled); "
                                 "bootstrap the ciphertext first")
            pt = self._ctx._engine.encode(self._rows, int(level), purpose == "multiply")
            self._variants[key] = pt
        return pt

    @property
    def shape(self) -> Tuple[int, ...]:
        """Logical shape of the encoded values."""
        return self._shape

    @property
    def level(self) -> int:
        """The level the values are encoded for."""
        return int(self._pt.level)

    @property
    def purpose(self) -> str:
        """'multiply', 'add' or 'auto'."""
        return self._purpose

    @property
    def _encoding_purpose(self) -> str:
        """What the held encoding serves ("multiply" or "add"); saved files keep only it."""
        if self._purpose != "auto":
            return self._purpose
        return next(p for (p, lv), pt in self._variants.items() if pt is self._pt)

    @property
    def nbytes(self) -> int:
        """Bytes of encoded data."""
        return int(self._pt.nbytes)

    @property
    def context(self):
        """The Context that encoded the values."""
        return self._ctx

    def __repr__(self) -> str:
        return f"PlainTensor(shape={self._shape}, level={self.level}, purpose='{self._purpose}', scale=2^{math.log2(self._pt.scale):.2f})"

    def to_bytes(self) -> bytes:
        """The encoded values in hetensor's binary format (see :func:`hetensor.load`)."""
        from . import _codec

        return _codec.plain_bytes(self)

    def save(self, file) -> None:
        """Write :meth:`to_bytes` to a path or binary file object."""
        from . import _codec

        _codec.write(self.to_bytes(), file)

    def __reduce__(self):
        from . import _codec

        return _codec.reduce(self)

    __array_ufunc__ = None
