"""Packed matrix products on encrypted tensors: CPMM, CCMM, LoRA products, transpose, sums.

Every heavy step is one C++ call (``hetensor._core.linalg_*``): a block linear
map (Halevi-Shoup diagonals, baby-step giant-step, hoisted babies), a sum of
products of rotated ciphertexts with lazy relinearization, or a
rotate-and-sum. This package chooses layouts and routes (from shapes, layouts
and levels only), builds the maps (numpy index arithmetic), checks every
rotation key an operation needs before it starts, caches encoded plaintexts
and counts what each operation cost (:class:`MatmulCost`, :func:`last_cost`).
See docs/LINALG.md.

Modules, each importing only those above it:

- ``cache``: per-context plans, encoded diagonals and their byte budget.
- ``keypolicy``: key policies, missing-key checks, ``auto_keys``.
- ``runmode``: plan-then-run (ghost operands) and the C++ steps.
- ``cost``: :class:`MatmulCost`.
- ``moves``: layouts, relayout, masks, transpose, sums, broadcasts.
- ``plainmm``: :class:`PlainMatrix`, encrypted x plaintext products.
- ``lora``: replicate / collect products for thin operands (LoRA).
- ``ccmm``: encrypted x encrypted routes, :class:`PreparedMatrix`.
- ``products``: :func:`matmul`.
- ``keys``: :func:`rotation_steps_for`.
"""

from __future__ import annotations

from ..layout import Layout
from .cache import clear_cache, set_plaintext_budget, set_workspace_budget
from .ccmm import PreparedMatrix, candidates as _ccmm_candidates, prepare, suggest_layout
from .cost import MatmulCost, last_cost
from .keypolicy import auto_keys, key_bytes, key_policy, power_of_two_terms, set_auto_keys, set_key_policy
from .keys import rotation_steps_for
from .moves import (align, broadcast_to, encrypt_matrix, layout_of, mask_padding, materialize_transpose,
                    plain_rows, relayout, roll_rows, tensor_sum, to_matrix, transpose)
from .plainmm import PlainMatrix, as_plain as _as_plain
from .products import lora, matmul, prepare_lora

__all__ = [
    "Layout", "MatmulCost", "PlainMatrix", "PreparedMatrix", "align", "auto_keys", "broadcast_to", "clear_cache",
    "encrypt_matrix", "key_bytes", "key_policy", "last_cost", "layout_of", "lora", "mask_padding", "materialize_transpose",
    "matmul", "plain_rows", "power_of_two_terms", "prepare", "prepare_lora", "relayout", "roll_rows", "rotation_steps_for", "set_auto_keys",
    "set_key_policy", "set_plaintext_budget", "set_workspace_budget", "suggest_layout", "tensor_sum", "to_matrix", "transpose",
]
