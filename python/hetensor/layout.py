"""Layouts: where each element of an encrypted (batched) matrix sits in the slots.

A matrix X (m x n), or a batch of them (b x m x n), is stored column-major in
*super-slots*: a ciphertext's N/2 slots are cut into K = slots / bm runs of
``bm`` consecutive slots (bm a power of two), and column c of a block lives in
super-slot c:

    slot(r, c) = (r mod br) + bm * (c mod bc)
    ciphertext(item, r, c) = item * per_item + (r // br) * ncb + (c // bc)

with ``br <= bm`` rows and ``bc <= K`` columns per block, ``nrb`` row blocks and
``ncb`` column blocks per item. A rotation by ``bm * t`` then shifts whole
columns cyclically and a rotation by ``t < bm`` shifts rows inside every
column, which is what the products of :mod:`hetensor.linalg` are built on.

``transposed=True`` stores X^T in that form instead, so ``X.T`` costs nothing:
it flips the flag. ``clean`` says that every slot that holds no element is zero
(sums and replication need it; products that leave partial sums in the
padding clear it).

The default layout of ``ctx.encrypt(x, layout="matrix")`` for an m x n matrix
takes bm = the next power of two >= m (at most slots), br = m, bc = min(n, K).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np


def next_pow2(x: int) -> int:
    """Smallest power of two >= x (1 for x <= 1)."""
    x = int(x)
    return 1 if x <= 1 else 1 << (x - 1).bit_length()


class Layout:
    """Placement of a (batched) matrix in the slots of a batch of ciphertexts.

    Attributes:
        shape: the logical shape that decrypt returns: (m, n), (b, m, n), or a
            vector shape when the layout holds a row or column of a matrix.
        batch, rows, cols: the matrix dimensions b, m, n behind ``shape``.
        slots: values per ciphertext.
        bm: super-slot length (a power of two); K = slots // bm super-slots.
        br, bc: rows and columns of the stored matrix per block.
        transposed: the ciphertexts hold X^T (so X.T is free).
        clean: slots that hold no element are zero.
    """

    __slots__ = ("shape", "batch", "rows", "cols", "slots", "bm", "br", "bc", "transposed", "clean", "_pos")

    def __init__(
        self,
        matrix: Sequence[int],
        slots: int,
        *,
        bm: Optional[int] = None,
        br: Optional[int] = None,
        bc: Optional[int] = None,
        transposed: bool = False,
        clean: bool = True,
        shape: Optional[Sequence[int]] = None,
    ) -> None:
        matrix = tuple(int(s) for s in matrix)
        two_d = len(matrix) == 2
        if two_d:
            matrix = (1,) + matrix
        if len(matrix) != 3 or min(matrix) < 1:
            raise ValueError(f"a layout holds a matrix (m, n) or a batch (b, m, n) of them, got shape {matrix}")
        slots = int(slots)
        if slots < 1 or slots & (slots - 1):
            raise ValueError("slots must be a power of two")
        self.batch, self.rows, self.cols = matrix
        self.slots = slots
        self.transposed = bool(transposed)
        pm, pn = self.physical
        if bm is None:
            bm = min(next_pow2(pm), slots)
        bm = int(bm)
        if bm < 1 or bm & (bm - 1) or bm > slots:
            raise ValueError(f"bm must be a power of two <= {slots}, got {bm}")
        K = slots // bm
        br = min(pm, bm) if br is None else int(br)
        bc = min(pn, K) if bc is None else int(bc)
        if not 1 <= br <= bm:
            raise ValueError(f"br must be in [1, bm={bm}], got {br}")
        if not 1 <= bc <= K:
            raise ValueError(f"bc must be in [1, K={K}], got {bc}")
        self.bm, self.br, self.bc = bm, br, bc
        self.clean = bool(clean)
        default_shape = (self.rows, self.cols) if two_d else matrix
        self.shape = tuple(int(s) for s in shape) if shape is not None else default_shape
        if math.prod(self.shape) != self.batch * self.rows * self.cols:
            raise ValueError(f"shape {self.shape} does not match the matrix {matrix}")
        self._pos = None

    # -- geometry -------------------------------------------------------------
    @classmethod
    def for_matrix(cls, shape: Sequence[int], slots: int, **kw) -> "Layout":
        """The default layout for a 2-D or 3-D array of this shape (1-D: a row)."""
        shape = tuple(int(s) for s in shape)
        if len(shape) == 1:
            return cls((1, shape[0]), slots, shape=shape, **kw)
        if len(shape) not in (2, 3):
            raise ValueError(f"matrix layouts hold 1-D, 2-D or 3-D tensors, got shape {shape}")
        return cls(shape, slots, shape=shape, **kw)

    @property
    def physical(self) -> Tuple[int, int]:
        """Shape (pm, pn) of the stored matrix: (m, n), or (n, m) when transposed."""
        return (self.cols, self.rows) if self.transposed else (self.rows, self.cols)

    @property
    def matrix(self) -> Tuple[int, int, int]:
        """(b, m, n)."""
        return (self.batch, self.rows, self.cols)

    @property
    def K(self) -> int:
        """Super-slots per ciphertext."""
        return self.slots // self.bm

    @property
    def nrb(self) -> int:
        """Row blocks of the stored matrix."""
        return -(-self.physical[0] // self.br)

    @property
    def ncb(self) -> int:
        """Column blocks of the stored matrix."""
        return -(-self.physical[1] // self.bc)

    @property
    def per_item(self) -> int:
        """Ciphertexts per matrix of the batch."""
        return self.nrb * self.ncb

    @property
    def num_ciphertexts(self) -> int:
        return self.batch * self.per_item

    def replace(self, **kw) -> "Layout":
        """A copy with some fields changed (matrix=(b, m, n), bm, br, bc, transposed, clean, shape)."""
        args = dict(matrix=self.matrix, bm=self.bm, br=self.br, bc=self.bc, transposed=self.transposed,
                    clean=self.clean, shape=self.shape)
        args.update(kw)
        if "matrix" in kw and "shape" not in kw:
            args["shape"] = None
        matrix = args.pop("matrix")
        return Layout(matrix, self.slots, **args)

    @property
    def T(self) -> "Layout":
        """The layout of the transpose (same slots, flag flipped)."""
        if len(self.shape) == 1:
            return self
        shape = self.shape[:-2] + (self.shape[-1], self.shape[-2])
        return Layout((self.batch, self.cols, self.rows), self.slots, bm=self.bm, br=self.br, bc=self.bc,
                      transposed=not self.transposed, clean=self.clean, shape=shape)

    def key(self) -> tuple:
        """What decides slot positions (clean excluded): equal keys, same slots."""
        return (self.matrix, self.slots, self.bm, self.br, self.bc, self.transposed)

    def same_slots(self, other: "Layout") -> bool:
        """True when both layouts put every element in the same slot."""
        return isinstance(other, Layout) and self.key() == other.key()

    def __eq__(self, other) -> bool:
        return isinstance(other, Layout) and self.key() == other.key() and self.shape == other.shape

    def __hash__(self) -> int:
        return hash(self.key() + (self.shape,))

    def __repr__(self) -> str:
        b = f"{self.batch} x " if self.batch > 1 else ""
        return (
            f"Layout({b}{self.rows}x{self.cols}{' stored transposed' if self.transposed else ''}, "
            f"bm={self.bm}, block {self.br}x{self.bc}, {self.nrb}x{self.ncb} blocks, "
            f"{self.num_ciphertexts} ciphertext(s){'' if self.clean else ', padding not zero'})"
        )

    # -- positions ------------------------------------------------------------
    def index(self, item, r, c) -> Tuple[np.ndarray, np.ndarray]:
        """(ciphertext, slot) of logical elements (item, r, c) (arrays broadcast)."""
        item, r, c = (np.asarray(v, dtype=np.int64) for v in (item, r, c))
        pr, pc = (c, r) if self.transposed else (r, c)
        ct = item * self.per_item + (pr // self.br) * self.ncb + (pc // self.bc)
        slot = (pr % self.br) + self.bm * (pc % self.bc)
        return ct, slot

    def positions(self) -> Tuple[np.ndarray, np.ndarray]:
        """(ciphertext, slot) of every element in logical (b, m, n) row-major order."""
        if self._pos is None:
            b, r, c = np.meshgrid(np.arange(self.batch), np.arange(self.rows), np.arange(self.cols), indexing="ij")
            ct, slot = self.index(b.reshape(-1), r.reshape(-1), c.reshape(-1))
            self._pos = (ct, slot)
        return self._pos

    def pack(self, x) -> np.ndarray:
        """Rows (num_ciphertexts, slots) of complex slot values holding ``x``; zeros elsewhere."""
        arr = np.asarray(x)
        if arr.size != self.batch * self.rows * self.cols:
            raise ValueError(f"cannot pack an array of shape {arr.shape} into {self}")
        rows = np.zeros((self.num_ciphertexts, self.slots), dtype=np.complex128)
        ct, slot = self.positions()
        rows[ct, slot] = arr.reshape(-1)
        return rows

    def unpack(self, rows: np.ndarray) -> np.ndarray:
        """The logical array (``shape``) from decrypted rows (num_ciphertexts, slots)."""
        rows = np.asarray(rows)
        if rows.shape != (self.num_ciphertexts, self.slots):
            raise ValueError(f"expected {self.num_ciphertexts} rows of {self.slots} slots, got {rows.shape}")
        ct, slot = self.positions()
        return rows[ct, slot].reshape(self.shape)

    def mask(self) -> np.ndarray:
        """0/1 rows marking the slots that hold elements."""
        rows = np.zeros((self.num_ciphertexts, self.slots), dtype=np.complex128)
        ct, slot = self.positions()
        rows[ct, slot] = 1.0
        return rows


class FlatLayout:
    """The plain packing of ``Context.encrypt``: elements row-major over the slots."""

    __slots__ = ("shape", "slots")

    def __init__(self, shape: Sequence[int], slots: int) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.slots = int(slots)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def num_ciphertexts(self) -> int:
        return max(1, -(-self.size // self.slots))

    def positions(self) -> Tuple[np.ndarray, np.ndarray]:
        idx = np.arange(self.size, dtype=np.int64)
        return idx // self.slots, idx % self.slots

    def as_layout(self) -> Optional[Layout]:
        """The same packing as a matrix Layout, when there is one (2-D, n a power of two)."""
        if len(self.shape) != 2:
            return None
        m, n = self.shape
        if n & (n - 1) or n > self.slots:
            return None
        return Layout((m, n), self.slots, bm=n, br=n, bc=min(m, self.slots // n), transposed=True,
                      clean=True, shape=self.shape)

    def __repr__(self) -> str:
        return f"FlatLayout(shape={self.shape}, row-major over {self.num_ciphertexts} ciphertext(s))"
