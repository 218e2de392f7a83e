"""``rotation_steps_for``: the keys an operation will use, from shapes, layouts and levels.

It runs the operation's own code on ghost operands (see :mod:`runmode`), so the
steps are exactly those the operation uses when it runs on operands of these
shapes, layouts and levels.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from ..layout import FlatLayout, Layout
from . import runmode as rm
from .keypolicy import key_policy, keys_for_steps
from .moves import align, broadcast_to, materialize_transpose, relayout, tensor_sum
from .plainmm import PlainMatrix
from .products import lora, matmul

OPS = ("cpmm", "pcmm", "ccmm", "matmul", "sum", "broadcast", "relayout", "transpose", "add", "lora")


def _layout_of_spec(spec, shape, slots: int, flat_default: bool = False):
    """A Layout, or None for the flat packing, from a layout argument of rotation_steps_for."""
    shape = tuple(int(s) for s in shape)
    if spec is None:
        spec = "flat" if flat_default else "matrix"
    if isinstance(spec, Layout):
        if spec.slots != slots:
            raise ValueError(f"the layout is for {spec.slots} slots, the context has {slots}")
        return spec if tuple(spec.shape) == shape else spec.replace(shape=shape)
    if isinstance(spec, FlatLayout) or spec == "flat":
        return None
    if spec == "matrix":
        return Layout.for_matrix(shape, slots)
    if spec == "matrix.T":
        if len(shape) < 2:
            raise ValueError("layout 'matrix.T' needs a 2-D or 3-D shape")
        return Layout.for_matrix(shape[:-2] + (shape[-1], shape[-2]), slots).T
    raise ValueError(f"unknown layout {spec!r}: use a hetensor.Layout, 'matrix', 'matrix.T' or 'flat'")


def ghost(ctx, shape, layout=None, level: Optional[int] = None, flat_default: bool = False) -> rm.GhostTensor:
    """A ghost operand: shape, layout and level of a CipherTensor without data."""
    shape = tuple(int(s) for s in shape)
    lay = _layout_of_spec(layout, shape, ctx.slots, flat_default)
    lvl = int(ctx.fresh_level if level is None else level)
    if lay is not None:
        batch = lay.num_ciphertexts
    else:
        batch = max(1, -(-int(np.prod(shape)) // ctx.slots))
    return rm.GhostTensor._wrap(ctx, rm.GhostCiphertext(lvl, batch, ctx.scale_at(lvl)), shape, False, False, lay)


def _operand(s: Any, i: int, lays: list, levels: list, own_level: bool) -> tuple:
    """The shape of operand ``i``; an encrypted tensor also fills in its layout and level."""
    if hasattr(s, "_ct") and hasattr(s, "shape"):
        if lays[i] is None:
            lays[i] = s._layout if getattr(s, "_layout", None) is not None else "flat"
        if own_level:
            levels[i] = int(s.level)
        return tuple(s.shape)
    if isinstance(s, PlainMatrix):
        return tuple(s.shape)
    if isinstance(s, (int, np.integer)):
        return (int(s),)
    if isinstance(s, np.ndarray) and s.ndim == 1:  # a shape held in an array
        s = s.tolist()
    if not isinstance(s, (tuple, list)) or not all(isinstance(v, (int, np.integer)) for v in s):
        raise TypeError(f"operand {i}: expected a shape (a tuple of ints) or a tensor, got {s!r}")
    return tuple(int(v) for v in s)


def rotation_steps_for(ctx, op: str, *shapes, layouts: Optional[Sequence[Any]] = None,
                       method: Optional[str] = None, dim=None, level: Any = None) -> List[int]:
    """The key steps (normalized to [1, slots)) that ``op`` uses on operands of these shapes.

    op: ``"cpmm"`` (x @ W, shapes x, W), ``"pcmm"`` (W @ x, shapes W, x),
    ``"ccmm"`` / ``"matmul"`` (x @ y, both encrypted), ``"lora"`` (x @ A @ B,
    all encrypted), ``"sum"`` (shape, ``dim=``), ``"broadcast"`` (vector shape,
    target shape), ``"relayout"`` (shape; ``layouts=[src, dst]``),
    ``"transpose"`` (a materialized transpose), ``"add"`` (element-wise ops
    between two tensors: the alignment they need).

    ``layouts``: per operand a :class:`hetensor.Layout`, ``"matrix"`` (the
    default), ``"matrix.T"`` or ``"flat"`` (``ctx.encrypt`` without a layout).
    ``level``: the operands' level (an int or one per operand; default the
    level fresh ciphertexts have): routes depend on it. Under the
    ``"power-of-two"`` policy the result is the power-of-two keys the
    rotations are composed from.

    An operand may be the CipherTensor itself instead of its shape: its
    layout and level are then taken from it (unless given). ``"sum"`` takes
    its ``dim`` as a keyword or as the argument after the shape, as
    ``x.sum(dim)`` does: ``rotation_steps_for(ctx, "sum", x, 0)``.
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}: one of {', '.join(OPS)}")
    if op == "sum" and len(shapes) == 2:  # rotation_steps_for("sum", shape, dim)
        if dim is not None:
            raise ValueError("sum: dim given twice (after the shape and as dim=)")
        shapes, dim = shapes[:1], shapes[1]
    lays = list(layouts or [])
    lays += [None] * (len(shapes) - len(lays))
    levels = list(level) if isinstance(level, (list, tuple)) else [level] * max(1, len(shapes))
    levels += [levels[-1]] * (len(shapes) - len(levels))
    shapes = tuple(_operand(s, i, lays, levels, level is None) for i, s in enumerate(shapes))

    def g(i, flat_default=False):
        return ghost(ctx, shapes[i], lays[i], levels[i], flat_default)

    def need(count):
        if len(shapes) != count:
            raise ValueError(f"{op} takes {count} shape(s), got {len(shapes)}")

    if op in ("cpmm", "pcmm"):
        need(2)
        xi, wi = (0, 1) if op == "cpmm" else (1, 0)
        w = PlainMatrix(ctx, np.ones(tuple(shapes[wi])))
        x = g(xi)
        fn, args = (matmul.unplanned, (x, w) if op == "cpmm" else (w, x))
    elif op in ("ccmm", "matmul"):
        need(2)

        def fn(x, y):
            return matmul.unplanned(x, y, method=method)

        args = (g(0), g(1, flat_default=len(shapes[1]) == 1))
    elif op == "lora":
        need(3)

        fn, args = lora.unplanned, (g(0), g(1), g(2))
    elif op == "sum":
        need(1)
        fn, args = tensor_sum.unplanned, (g(0), dim)
    elif op == "broadcast":
        need(2)
        target = _layout_of_spec(lays[1], shapes[1], ctx.slots)
        if target is None:
            raise ValueError("broadcast needs a matrix layout for the target")
        fn, args = broadcast_to.unplanned, (g(0), target)
    elif op == "relayout":
        need(1)
        if len(lays) < 2 or lays[1] is None:
            raise ValueError("relayout needs layouts=[source, target]")
        dst = _layout_of_spec(lays[1], shapes[0], ctx.slots)
        fn, args = relayout.unplanned, (ghost(ctx, shapes[0], lays[0], levels[0], flat_default=True), dst)
    elif op == "transpose":
        need(1)
        fn, args = materialize_transpose.unplanned, (g(0),)
    else:  # add
        need(2)
        fn, args = align.unplanned, (g(0), g(1), "add")
    return keys_for_steps(ctx.slots, rm.collect(fn, *args)[1], key_policy(ctx))
