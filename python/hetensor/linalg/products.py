"""``matmul``: the one entry point of every product; it dispatches on the operands' kinds."""

from __future__ import annotations

import time
from typing import Optional

from . import runmode as rm
from .ccmm import PreparedMatrix, matmul_cc, matmul_prepared
from .cost import MatmulCost, publish
from .plainmm import as_plain, matmul_plain


@rm.planned("multiply")
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
