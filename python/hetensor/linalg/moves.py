"""Layouts in motion: matrix packing, relayout, masks, transpose, sums, broadcasts, alignment.

Each data movement is one block linear map (one level) or a rotate-and-sum
(no level); see docs/LINALG.md.
"""

from __future__ import annotations

import math
import time
from typing import Any, List, Optional

import numpy as np

from .._convert import is_torch_tensor, to_numpy
from ..layout import FlatLayout, Layout, next_pow2
from . import runmode as rm
from .cache import entry_plan, plan as cached_plan
from .cost import MatmulCost, publish


def doubling(count: int, unit: int, sign: int = 1) -> List[int]:
    """Steps sign * unit * 2^e for 2^e < next_pow2(count): x += rot(x, s) sums/copies `count` blocks."""
    return [sign * unit * (1 << e) for e in range(int(math.log2(next_pow2(count))))]


def layout_of(x) -> Any:
    """The Layout of a CipherTensor, or a FlatLayout for the plain packing."""
    lay = getattr(x, "_layout", None)
    return lay if lay is not None else FlatLayout(x.shape, x.context.slots)


def make(ctx, ct, layout: Layout, like, is_complex: Optional[bool] = None):
    """A tensor of ``like``'s class (a CipherTensor or a ghost) holding ``ct`` in ``layout``."""
    CT = type(like)
    cplx = bool(getattr(like, "_complex", False)) if is_complex is None else bool(is_complex)
    torch_out = bool(getattr(like, "_torch", False))
    return CT._wrap(ctx, ct, layout.shape, cplx, torch_out, layout)


def encrypt_matrix(ctx, x, layout=None, symmetric: bool = False, *, cls=None, level=None):
    """Encrypt a 1-D, 2-D or 3-D array into a matrix Layout (``layout="matrix"`` or a Layout)."""
    was_torch = is_torch_tensor(x)
    arr = to_numpy(x)
    if layout is None or (isinstance(layout, str) and layout in ("matrix", "default")):
        lay = Layout.for_matrix(arr.shape, ctx.slots)
    elif isinstance(layout, str) and layout == "matrix.T":
        if arr.ndim < 2:
            raise ValueError("layout 'matrix.T' needs a 2-D or 3-D array")
        lay = Layout.for_matrix(np.swapaxes(arr, -1, -2).shape, ctx.slots).T
    elif isinstance(layout, Layout):
        lay = layout
        if lay.slots != ctx.slots:
            raise ValueError(f"the layout is for {lay.slots} slots, the context has {ctx.slots}")
        if tuple(lay.shape) != tuple(arr.shape):
            if lay.batch * lay.rows * lay.cols != arr.size:
                raise ValueError(f"cannot encrypt an array of shape {arr.shape} into {lay}")
            lay = lay.replace(shape=arr.shape)
    else:
        raise ValueError(f"unknown layout {layout!r}: use 'matrix', 'matrix.T' or a hetensor.Layout")
    lay = lay.replace(clean=True)
    rows = lay.pack(arr)
    lv = int(getattr(ctx, "_fresh_level", ctx.max_level)) if level is None else int(level)
    ct = ctx._engine.encrypt(rows, bool(symmetric), lv)
    return cls._wrap(ctx, ct, lay.shape, np.iscomplexobj(arr), was_torch, lay)


def is_matrix(x) -> bool:
    return getattr(x, "_layout", None) is not None


def _levels_of(*xs) -> int:
    return min(int(x.level) for x in xs)


@rm.planned("convert to a matrix layout")
def to_matrix(x, cost: Optional[MatmulCost] = None):
    """``x`` in a matrix Layout: itself, a free reinterpretation of the flat packing, or a conversion (one level)."""
    if is_matrix(x):
        return x
    flat = FlatLayout(x.shape, x.context.slots)
    lay = flat.as_layout()
    if lay is not None:
        return make(x.context, x._ct, lay, like=x)
    return relayout(x, _matrix_target(x.shape, x.context.slots), cost=cost)


def _matrix_target(shape, slots: int) -> Layout:
    """The layout a flat tensor is moved into: transposed, so a row keeps its slots' order (cheap map)."""
    shape = tuple(shape)
    if len(shape) not in (1, 2, 3):
        raise ValueError(f"matrix operations need a 1-D, 2-D or 3-D tensor, got shape {shape}")
    if len(shape) == 1:
        return Layout.for_matrix(shape, slots)
    return Layout.for_matrix(shape[:-2] + (shape[-1], shape[-2]), slots).T


def _through_map(x, key, plan, lay: Layout, cost: MatmulCost, own: bool, t0: float):
    """``x`` through the block map ``plan`` (one level), stored in ``lay`` (clean); ``cost`` is
    completed (levels, seconds since ``t0``) and published when the op owns it."""
    level = int(x.level)
    ct = rm.apply_map(x.context, key, plan, x._ct, level, 1, cost)
    out = make(x.context, ct, lay.replace(clean=True), like=x)
    if own:
        cost.levels = level - int(out.level)
        cost.seconds = time.perf_counter() - t0
        publish(cost)
    return out


def relayout_plan(ctx, src, dst: Layout):
    """(cache key, plan) of the block map that moves a tensor from layout ``src`` into ``dst``,
    made once per context."""
    key = ("relayout", lkey(src), dst.key())

    def build():
        ic, is_ = src.positions()
        oc, os_ = dst.positions()
        return entry_plan(ctx.slots, src.num_ciphertexts, dst.num_ciphertexts, oc, os_, ic, is_)

    return key, cached_plan(ctx, key, build)


@rm.planned("move a tensor to another layout")
def relayout(x, target: Layout, cost: Optional[MatmulCost] = None):
    """``x`` moved into ``target`` (same logical shape) by one block linear map (one level, free when equal)."""
    ctx = x.context
    src = layout_of(x)
    if isinstance(src, Layout) and src.same_slots(target):
        if src.shape != target.shape:
            return make(ctx, x._ct, target.replace(clean=src.clean), like=x)
        return x
    if math.prod(src.shape) != target.batch * target.rows * target.cols:
        raise ValueError(f"cannot move a tensor of shape {src.shape} into {target}")
    own = cost is None
    cost = cost or MatmulCost(op="relayout", method="map")
    t0 = time.perf_counter()
    key, plan = relayout_plan(ctx, src, target)
    return _through_map(x, key, plan, target, cost, own, t0)


@rm.planned("roll rows within blocks")
def roll_rows(x, shift: int, block: int, cost: Optional[MatmulCost] = None):
    """Rows rolled inside consecutive blocks of ``block`` rows: row ``b * block + t`` of the
    result is row ``b * block + (t + shift) mod block`` of ``x`` (every token sees the token
    ``shift`` places later in its own sequence). Same layout as ``x`` (a matrix layout), one
    block linear map: one level; in a layout whose rows lie in the lanes of a super-slot
    (the default), two rotations per ciphertext (steps ``shift`` and ``shift - block``)."""
    ctx = x.context
    x = to_matrix(x, cost)
    lay = x._layout
    rows = int(lay.rows)
    block, shift = int(block), int(shift)
    if block < 1 or rows % block:
        raise ValueError(f"cannot roll rows within blocks of {block}: the tensor has {rows} rows")
    if shift % block == 0:
        return x
    own = cost is None
    cost = cost or MatmulCost(op="roll", method="map")
    t0 = time.perf_counter()
    key = ("roll_rows", lay.key(), block, shift % block)

    def build():
        b, r, c = np.meshgrid(np.arange(lay.batch), np.arange(rows), np.arange(lay.cols), indexing="ij")
        src = (r // block) * block + (r % block + shift) % block
        oc, os_ = lay.index(b.reshape(-1), r.reshape(-1), c.reshape(-1))
        ic, is_ = lay.index(b.reshape(-1), src.reshape(-1), c.reshape(-1))
        return entry_plan(ctx.slots, lay.num_ciphertexts, lay.num_ciphertexts, oc, os_, ic, is_)

    return _through_map(x, key, cached_plan(ctx, key, build), lay, cost, own, t0)


def lkey(lay) -> tuple:
    return lay.key() if isinstance(lay, Layout) else ("flat", lay.shape, lay.slots)


@rm.planned("mask the padding")
def mask_padding(x, cost: Optional[MatmulCost] = None):
    """Zero every slot that holds no element (one plaintext product, one level); free when clean."""
    lay = x._layout
    if lay is None or lay.clean:
        return x
    own = cost is None
    cost = cost or MatmulCost(op="mask", method="plain")
    level = int(x.level)
    ct = rm.mul_values(x.context, x._ct, lay.mask())
    cost.plain_mults += lay.num_ciphertexts
    cost.rescales += lay.num_ciphertexts
    out = make(x.context, ct, lay.replace(clean=True), like=x)
    if own:
        cost.levels = level - int(out.level)
        publish(cost)
    return out


@rm.planned("transpose")
def transpose(x):
    """X^T: free for matrix layouts (the layout's flag flips)."""
    if len(x.shape) < 2:
        return x
    cost = MatmulCost(op="transpose", method="flag")
    level = int(x.level)
    x = to_matrix(x, cost)
    out = make(x.context, x._ct, x._layout.T, like=x)
    cost.levels = level - int(out.level)
    publish(cost)
    return out


@rm.planned("transpose")
def materialize_transpose(x):
    """X^T stored non-transposed (moves the slots: one block linear map, one level)."""
    t = transpose(x)
    lay = t._layout
    if not lay.transposed:
        return t
    target = Layout(lay.matrix, lay.slots, bm=lay.bm, br=min(lay.rows, lay.bm), transposed=False, shape=lay.shape)
    return relayout(t, target)


def _add_gathered(ctx, ct, groups):
    """The sum of the ciphertexts gathered by each index list of ``groups`` (additions only, in order)."""
    total = None
    for idx in groups:
        part = rm.gather(ctx, ct, idx)
        total = part if total is None else rm.add(ctx, total, part)
    return total


def _sum_rows_physical(ctx, ct, lay: Layout, cost: MatmulCost):
    """Sum over the stored rows: result stored as one row per item (row 0 of each super-slot)."""
    pm, pn = lay.physical
    nrb, ncb = lay.nrb, lay.ncb
    if nrb > 1:
        ct = _add_gathered(ctx, ct, ([it * lay.per_item + rb * ncb + cb for it in range(lay.batch) for cb in range(ncb)]
                                     for rb in range(nrb)))
    ct = rm.rotate_sum(ctx, ct, doubling(min(pm, lay.br), 1), cost)
    return ct, dict(bm=lay.bm, br=1, bc=lay.bc), (1, pn)


def _sum_cols_physical(ctx, ct, lay: Layout, cost: MatmulCost):
    pm, pn = lay.physical
    nrb, ncb = lay.nrb, lay.ncb
    if ncb > 1:
        ct = _add_gathered(ctx, ct, ([it * lay.per_item + rb * ncb + cb for it in range(lay.batch) for rb in range(nrb)]
                                     for cb in range(ncb)))
    ct = rm.rotate_sum(ctx, ct, doubling(min(pn, lay.bc), lay.bm), cost)
    return ct, dict(bm=lay.bm, br=lay.br, bc=1), (pm, 1)


@rm.planned("sum")
def tensor_sum(x, dim=None, keepdim: bool = False):
    """Sum over ``dim`` (None: all elements). Rows: log2(br) rotations; columns:
    log2(bc) rotations; blocks and batch items: additions. No level when the
    padding is clean, one (a mask) otherwise."""
    ctx = x.context
    cost = MatmulCost(op="sum", method="rotate-and-sum")
    level = int(x.level)
    x = to_matrix(x, cost)
    nd = len(x.shape)
    if dim is None:
        dims = list(range(nd))
    elif isinstance(dim, (tuple, list)):
        dims = [int(d) for d in dim]
    else:
        dims = [int(dim)]
    dims = sorted({d + nd if d < 0 else d for d in dims})
    if any(d < 0 or d >= nd for d in dims):
        raise ValueError(f"dim {dim} out of range for a tensor of {nd} dimension(s)")
    x = mask_padding(x, cost)
    lay: Layout = x._layout
    ct = x._ct
    b, m, n = lay.matrix
    # logical dims -> matrix dims ('b', 'r', 'c')
    names = {1: ["c"], 2: ["r", "c"], 3: ["b", "r", "c"]}[nd]
    if nd == 1 and lay.rows != 1:  # a stored column
        names = ["r"]
    which = {names[d] for d in dims}
    if "b" in which and b > 1:
        ct = _add_gathered(ctx, ct, (list(range(it * lay.per_item, (it + 1) * lay.per_item)) for it in range(b)))
        b = 1
        lay = lay.replace(matrix=(1, m, n))
    for name in ("r", "c"):
        if name not in which:
            continue
        phys_rows = (name == "r") != lay.transposed
        fn = _sum_rows_physical if phys_rows else _sum_cols_physical
        ct, kw, (pm, pn) = fn(ctx, ct, lay, cost)
        mm, nn = (pn, pm) if lay.transposed else (pm, pn)
        lay = Layout((lay.batch, mm, nn), ctx.slots, transposed=lay.transposed, clean=False, **kw)
    # logical output shape
    shape = list(x.shape)
    for d in reversed(dims):
        if keepdim:
            shape[d] = 1
        else:
            shape.pop(d)
    out_lay = lay.replace(shape=tuple(shape))
    out = make(ctx, ct, out_lay, like=x)
    cost.levels = level - int(out.level)
    publish(cost)
    return out


def _broadcast_setup(src, target: Layout):
    """Entries (oc, os, ic, is), copy steps and cleanliness of a vector broadcast into ``target``."""
    vs = tuple(src.shape)
    tb, tm, tn = target.matrix
    ts = tuple(target.shape)
    try:
        bshape = np.broadcast_shapes(vs, ts)
    except ValueError:
        raise ValueError(f"cannot broadcast shape {vs} to {ts}") from None
    if bshape != ts:
        raise ValueError(f"cannot broadcast shape {vs} to {ts}")
    # the vector's (b, m, n), aligned to the target's trailing dimensions
    if len(ts) == 1:
        full = (1, 1, vs[-1])
    elif len(ts) == 2:
        full = (1,) + ((1,) * (2 - len(vs)) + vs)[-2:]
    else:
        full = (1,) * (3 - len(vs)) + vs
    vb, vm, vn = full
    if vm not in (1, tm) or vn not in (1, tn) or vb not in (1, tb):
        raise ValueError(f"cannot broadcast shape {vs} to {ts}")
    rows_rep = vm == 1 and tm > 1
    cols_rep = vn == 1 and tn > 1
    bb, rr, cc = (a.reshape(-1) for a in np.meshgrid(np.arange(tb), np.arange(tm), np.arange(tn), indexing="ij"))
    keep = np.ones(bb.size, dtype=bool)
    steps: List[int] = []
    clean = True
    # logical rows are stored rows, or stored columns when the target is transposed
    for rep, logical, count in ((rows_rep, rr, tm), (cols_rep, cc, tn)):
        if not rep:
            continue
        along_rows = (logical is rr) != target.transposed
        block = target.br if along_rows else target.bc
        unit = 1 if along_rows else target.bm
        keep &= (logical % block) == 0
        span = min(block, count)
        steps += doubling(span, unit, -1)
        if next_pow2(span) != span or count % block:
            clean = False
    bb, rr, cc = bb[keep], rr[keep], cc[keep]
    oc, os_ = target.index(bb, rr, cc)
    vidx = (np.where(vb == 1, 0, bb) * vm * vn + np.where(vm == 1, 0, rr) * vn + np.where(vn == 1, 0, cc))
    sc, ss = src.positions()
    return (oc, os_, sc[vidx], ss[vidx]), steps, clean


@rm.planned("broadcast")
def broadcast_to(v, target: Layout, cost: Optional[MatmulCost] = None):
    """A row vector (1 x n), column vector (m x 1) or smaller batch broadcast into ``target``.

    One block linear map (one level) puts the vector in row 0 (column 0) of
    every block of the target, then log2(br) (log2(bc)) rotations copy it.
    The map is skipped when the vector already sits there and is clean.
    """
    ctx = v.context
    own = cost is None
    cost = cost or MatmulCost(op="broadcast", method="map+replicate")
    level = int(v.level)
    src = layout_of(v)
    (oc, os_, ic, is_), rep_steps, clean = _broadcast_setup(src, target)
    key = ("broadcast", lkey(src), target.key())
    if isinstance(src, Layout) and src.clean and src.num_ciphertexts == target.num_ciphertexts and \
            np.array_equal(ic, oc) and np.array_equal(is_, os_):
        ct = v._ct  # already in place
    else:
        plan = cached_plan(ctx, key, lambda: entry_plan(ctx.slots, src.num_ciphertexts, target.num_ciphertexts,
                                                   oc, os_, ic, is_))
        ct = rm.apply_map(ctx, key, plan, v._ct, level, 1, cost)
    ct = rm.rotate_sum(ctx, ct, rep_steps, cost)
    out = make(ctx, ct, target.replace(clean=bool(clean)), like=v)
    if own:
        cost.levels = level - int(out.level)
        publish(cost)
    return out


@rm.planned("align operands")
def align(a, b, op: str):
    """Operands of an element-wise op brought to one layout (broadcasting vectors)."""
    la, lb = getattr(a, "_layout", None), getattr(b, "_layout", None)
    if la is None and lb is None:
        return a, b
    ctx = a.context
    if b.context is not ctx:
        raise ValueError(f"cannot {op}: the tensors belong to different contexts; encrypt both with one Context")
    if tuple(a.shape) == tuple(b.shape):
        if la is not None and lb is not None and la.same_slots(lb):
            if la.clean != lb.clean:
                a = make(ctx, a._ct, la.replace(clean=False), like=a)
            return a, b
        if la is not None:
            return a, relayout(b, la)
        return relayout(a, lb), b
    try:
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ValueError(f"cannot {op}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ and do not broadcast") \
            from None
    if shape == tuple(a.shape):
        a = to_matrix(a)
        return a, broadcast_to(b, a._layout)
    if shape == tuple(b.shape):
        b = to_matrix(b)
        return broadcast_to(a, b._layout), b
    raise ValueError(f"cannot {op}: shapes {tuple(a.shape)} and {tuple(b.shape)} broadcast to {shape}, "
                     "which neither operand has; broadcast one explicitly")


def plain_rows(x, value, op: str):
    """Slot rows of a plaintext operand for a tensor with a matrix layout."""
    lay: Layout = x._layout
    arr = to_numpy(value, what=f"operand of {op}")
    try:
        arr = np.broadcast_to(arr, tuple(lay.shape))
    except ValueError:
        raise ValueError(f"cannot {op}: operand shape {arr.shape} does not broadcast to {tuple(lay.shape)}") from None
    return lay.pack(arr), np.iscomplexobj(arr)


