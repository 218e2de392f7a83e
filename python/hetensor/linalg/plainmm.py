"""Encrypted x plaintext products: ``X @ W`` and ``W @ X`` with W a :class:`PlainMatrix`.

One block linear map (Halevi-Shoup diagonals over super-slots, baby-step
giant-step, hoisted babies): one level. A weight's diagonals are encoded
lazily, at the level of the first product that uses them, and kept per level
while the context's plaintext budget allows; beyond it they are streamed
(encoded at every use).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Dict

import numpy as np

from .. import _core
from .._convert import to_numpy
from ..layout import Layout
from . import runmode as rm
from .cache import budget, cache, encode, encoded_bytes, workspace
from .cost import MatmulCost
from .moves import make, to_matrix

log = logging.getLogger("hetensor")


def weight_array(w) -> np.ndarray:
    arr = to_numpy(w, what="weight")
    if arr.ndim != 2:
        raise ValueError(f"a plaintext matrix must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr.astype(np.complex128))


class PlainMatrix:
    """A plaintext weight W, encoded lazily per (layout, level) and reused.

    ``X @ PlainMatrix(ctx, W)`` multiplies without re-encoding W for every
    input; ``X @ W`` with a numpy/torch W does the same through a cache keyed
    by W's content hash. The diagonals are encoded at the level of the first
    product (a model applies each weight at one known level) and kept while the
    context's budget allows (:func:`set_plaintext_budget`); a weight that does
    not fit is streamed (encoded at every use) with one log line, or refused
    with ``cache=True``.

    Args:
        ctx: the context.
        w: 2-D numpy array or torch tensor.
        name: shown in messages.
        cache: ``"auto"`` (keep when it fits, stream otherwise), ``True``
            (keep, raise ``ValueError`` when it does not fit the budget),
            ``False`` (always stream: no memory, slower products).
    """

    def __init__(self, ctx, w, *, name: str = "", cache: Any = "auto") -> None:
        if cache not in ("auto", True, False):
            raise ValueError("cache must be 'auto', True or False")
        self.context = ctx
        self.array = weight_array(w)
        self.shape = self.array.shape
        self.name = name
        self.cache = cache
        self.is_complex = bool(np.any(self.array.imag != 0))
        self._maps: Dict[Any, Any] = {}
        self._plans: Dict[Any, Any] = {}
        self._bytes = [0]

    @property
    def T(self) -> "PlainMatrix":
        return PlainMatrix(self.context, self.array.T, name=self.name + ".T" if self.name else "", cache=self.cache)

    @property
    def nbytes(self) -> int:
        """Bytes of encoded diagonals held."""
        return self._bytes[0]

    @property
    def levels(self):
        """Levels at which diagonals are held (cached or streamed)."""
        return sorted({k[2] for k in self._maps})

    def __repr__(self) -> str:
        return f"PlainMatrix({self.shape[0]}x{self.shape[1]}, {len(self._maps)} encoding(s), {self.nbytes} bytes)"

    def to_bytes(self) -> bytes:
        """The weights (not their encodings) in hetensor's binary format."""
        from .. import _codec

        return _codec.matrix_bytes(self)

    def save(self, file) -> None:
        """Write :meth:`to_bytes` to a path or binary file object."""
        from .. import _codec

        _codec.write(self.to_bytes(), file)

    def __reduce__(self):
        from .. import _codec

        return _codec.reduce(self)

    def _plan(self, geom: tuple, right: bool, w: np.ndarray):
        key = (geom, right)
        p = self._plans.get(key)
        if p is None:
            p = _core.linalg_matmul_map(*geom, bool(right), w)
            self._plans[key] = p
        return p

    def _map(self, geom: tuple, right: bool, w: np.ndarray, level: int):
        key = (geom, right, int(level))
        m = self._maps.get(key)
        if m is None:
            plan = self._plan(geom, right, w)
            ctx = self.context
            need = encoded_bytes(ctx, plan, level)
            c = cache(ctx)
            fits = c["bytes"] + need <= budget(ctx)
            label = self.name or f"{self.shape[0]}x{self.shape[1]}"
            if self.cache is True and not fits:
                raise ValueError(
                    f"the weight {label} needs {need / 2**20:.1f} MiB of encoded diagonals at level {level}, and "
                    f"{(budget(ctx) - c['bytes']) / 2**20:.1f} MiB of the plaintext budget are left; raise it with "
                    "hetensor.linalg.set_plaintext_budget(ctx, nbytes), apply the weight at a lower level, or "
                    "pass cache='auto' to stream it (encoded at every use)")
            if self.cache is False or not fits:
                if self.cache != False and need > budget(ctx):  # noqa: E712 ('auto' only)
                    log.info("hetensor: weight %s needs %.1f MiB encoded at level %d, more than the plaintext budget "
                             "(%.1f MiB): streamed (encoded at every product)", label, need / 2**20, level,
                             budget(ctx) / 2**20)
                m = plan.encoded(ctx._engine, int(level), False)
            else:
                m = encode(ctx, plan, level, self._bytes)
            self._maps[key] = m
        m.work_bytes = workspace(self.context)
        return m


def as_plain(ctx, w) -> PlainMatrix:
    if isinstance(w, PlainMatrix):
        if w.context is not ctx:
            raise ValueError("the PlainMatrix was made for another context")
        return w
    arr = weight_array(w)
    digest = hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest()
    key = (arr.shape, digest)
    weights = cache(ctx)["weights"]
    pm = weights.get(key)
    if pm is None:
        pm = PlainMatrix(ctx, arr)
        weights[key] = pm
    return pm


def geometry_right(lay: Layout, p: int):
    """(geometry, output layout kwargs) of Z = P W for the stored matrix P."""
    K = lay.K
    bc_out = min(p, K)
    nb_out = -(-p // bc_out)
    geom = (lay.slots, lay.bm, lay.br, lay.bc, lay.ncb, lay.br, bc_out, nb_out)
    return geom, dict(bm=lay.bm, br=lay.br, bc=bc_out)


def geometry_left(lay: Layout, q: int):
    """(geometry, output layout kwargs) of Z = W P (rows of P mixed inside super-slots)."""
    br_out = min(q, lay.bm)
    nb_out = -(-q // br_out)
    geom = (lay.slots, lay.bm, lay.br, lay.bc, lay.nrb, br_out, lay.bc, nb_out)
    return geom, dict(bm=lay.bm, br=br_out, bc=lay.bc)


def matmul_plain(x, pm: PlainMatrix, left: bool, cost: MatmulCost):
    """x @ W (left=False) or W @ x (left=True), W plaintext."""
    ctx = x.context
    W = pm.array
    x = to_matrix(x, cost)
    lay: Layout = x._layout
    one_d = len(lay.shape) == 1
    b, m, n = lay.matrix
    if not left:
        if W.shape[0] != n:
            raise ValueError(f"cannot multiply: shapes {tuple(lay.shape)} and {W.shape} do not align ({n} != {W.shape[0]})")
        p = W.shape[1]
        out_matrix = (b, m, p)
        out_shape = (p,) if one_d else lay.shape[:-1] + (p,)
        # Z = X W: stored X -> right product by W; stored X^T -> Z^T = W^T X^T, left product by W^T.
        right, Wm = (False, W.T) if lay.transposed else (True, W)
    else:
        if one_d:
            raise ValueError("W @ x needs x with at least 2 dimensions")
        if W.shape[1] != m:
            raise ValueError(f"cannot multiply: shapes {W.shape} and {tuple(lay.shape)} do not align ({W.shape[1]} != {m})")
        q = W.shape[0]
        out_matrix = (b, q, n)
        out_shape = lay.shape[:-2] + (q, n)
        # Z = W X: stored X -> left product by W; stored X^T -> Z^T = X^T W^T, right product by W^T.
        right, Wm = (True, W.T) if lay.transposed else (False, W)
    wdim = Wm.shape[1] if right else Wm.shape[0]
    geom, okw = geometry_right(lay, wdim) if right else geometry_left(lay, wdim)
    inner_groups = 1 if right else lay.ncb
    level = int(x.level)
    if level < 1:
        raise ValueError("cannot multiply: the tensor is at level 0; no level is left for the product")
    Wc = np.ascontiguousarray(Wm)
    plan = pm._plan(geom, right, Wc)
    mp = None if rm.planning() else pm._map(geom, right, Wc, level)
    out = rm.apply_map(ctx, None, plan, x._ct, level, inner_groups, cost, mp=mp)
    # the diagonals are zero outside the blocks, so the product is clean whatever the input's padding held
    out_lay = Layout(out_matrix, ctx.slots, transposed=lay.transposed, clean=True, shape=out_shape, **okw)
    return make(ctx, out, out_lay, like=x, is_complex=x._complex or pm.is_complex)
