"""``matmul``: the one entry point of every product; it dispatches on the operands' kinds."""

from __future__ import annotations

import time
from typing import Optional

from . import runmode as rm
from ..layout import Layout
from .ccmm import PreparedMatrix, matmul_cc, matmul_prepared, prepare
from .cost import MatmulCost, publish
from .moves import to_matrix
from .plainmm import as_plain, matmul_plain


@rm.planned("multiply", one_call=True)
def matmul(a, b, *, method: Optional[str] = None, return_cost: bool = False):
    """``a @ b`` where at least one side is a CipherTensor; the other may be a
    CipherTensor, a PreparedMatrix, a PlainMatrix, or a numpy/torch array.

    ``method`` forces the encrypted x encrypted algorithm (``"jkls"``,
    ``"diag"`` or one of the ``"lora-*"`` routes). The route is chosen from
    the operands' shapes, layouts and levels only; every rotation key it needs
    is checked before any work starts. The cost is in :func:`last_cost` (and
    returned with ``return_cost=True``).
    """
    t0 = time.perf_counter()
    if rm.is_tensor(a) and isinstance(b, PreparedMatrix):
        cost = MatmulCost(op="ccmm")
        level = min(int(a.level), b.level)
        out = matmul_prepared(a, b, cost)
    elif rm.is_tensor(a) and rm.is_tensor(b):
        cost = MatmulCost(op="ccmm")
        level = min(int(a.level), int(b.level))
        out = matmul_cc(a, b, cost, method)
    elif rm.is_tensor(a):
        cost = MatmulCost(op="cpmm", method="diagonal-bsgs")
        level = int(a.level)
        out = matmul_plain(a, as_plain(a.context, b), False, cost)
    elif rm.is_tensor(b):
        cost = MatmulCost(op="pcmm", method="diagonal-bsgs")
        level = int(b.level)
        out = matmul_plain(b, as_plain(b.context, a), True, cost)
    else:
        raise TypeError("matmul needs at least one CipherTensor")
    cost.levels = level - int(out.level)
    cost.seconds = time.perf_counter() - t0
    publish(cost)
    return (out, cost) if return_cost else out


def _lora_diag_applies(x, a) -> bool:
    """True when x @ a runs the broadcast-diagonal route, whose output repeats its columns."""
    if isinstance(a, PreparedMatrix):
        return a.cand["method"] == "diag"
    lx = getattr(x, "_layout", None)
    return lx is not None and not lx.transposed and rm.is_tensor(a)


@rm.planned("multiply (LoRA)", one_call=True)
def lora(x, a, b, *, return_cost: bool = False):
    """``x @ a @ b`` for a LoRA adapter: a (d x r) and b (r x p) encrypted (CipherTensors or
    :class:`PreparedMatrix` from :func:`prepare_lora`), r <= 64.

    ``x @ a`` runs the broadcast-diagonal route (r' - 1 hoisted rotations per
    column block of x, log2(K / r') fold rotations, 1 level on x); its output
    holds the r columns repeated every r' super-slots, which is exactly what
    the ``repeat`` route of ``(x a) @ b`` reads, so the second product costs
    r' - 1 hoisted rotations and 1 level: 2 levels in all, O(r + log d)
    rotations per ciphertext of x. Falls back to two :func:`matmul` calls
    when x's layout does not allow it.
    """
    t0 = time.perf_counter()
    level = int(x.level)
    cost = MatmulCost(op="lora")
    if _lora_diag_applies(x, a):
        if isinstance(a, PreparedMatrix):
            u = matmul_prepared(x, a, cost)
        else:
            u = matmul_cc(x, a, cost, "diag")
        if isinstance(b, PreparedMatrix):
            periodic = b.cand["method"] == "repeat"
            out = matmul_prepared(u, b, cost, periodic)
        else:
            out = matmul_cc(u, b, cost, "repeat", periodic=True)
        cost.method = "diag+repeat"
    else:
        u = matmul(x, a)
        out = matmul(u, b)
        cost.method = "two products"
    cost.levels = level - int(out.level)
    cost.seconds = time.perf_counter() - t0
    publish(cost)
    return (out, cost) if return_cost else out


@rm.planned("prepare a LoRA adapter")
def prepare_lora(a, b, left):
    """A LoRA adapter (a: d x r, b: r x p, encrypted) prepared for :func:`lora` with inputs in
    ``left`` (a Layout or a CipherTensor): returns (prepared a, prepared b)."""
    pa = prepare(a, left, method="diag")
    lay = left if isinstance(left, Layout) else to_matrix(left)._layout
    u_lay = pa.cand["setup"]["out"].replace(shape=lay.shape[:-1] + (pa.shape[1],))
    pb = prepare(b, u_lay, method="repeat")
    return pa, pb
