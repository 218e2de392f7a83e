"""Indexing, reshape, roll and concatenation of CipherTensors.

Every one of these moves elements between slots. The result is always in the
flat row-major packing of ``Context.encrypt`` (unused slots zero) and costs:

- nothing when the elements stay where they are (``reshape`` and ``flatten``
  of a flat tensor, a selection of whole ciphertexts of a batch, ``cat`` of
  tensors that each fill whole ciphertexts);
- otherwise one slot map: **one level**, one plaintext product per distinct
  shift d between source and destination slot, and about 2 sqrt(d) rotations
  (baby-step giant-step). Their keys must exist; ``ctx.rotation_steps_for(
  "getitem", shape, key)`` (or ``"roll"``, ``"cat"``) lists them (under the
  context's key policy), and a missing key raises :class:`hetensor.MissingKeyError`
  whose ``.steps`` does, or is made when the context has ``auto_keys``.

Works for matrix layouts too (the result is flat; one level).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _core


def _layout_positions(x) -> Tuple[np.ndarray, np.ndarray]:
    """(ciphertext, slot) of every element of x in logical row-major order."""
    lay = x._layout
    if lay is None:
        idx = np.arange(x.size, dtype=np.int64)
        return idx // x.context.slots, idx % x.context.slots
    ct, slot = lay.positions()
    return np.asarray(ct, dtype=np.int64), np.asarray(slot, dtype=np.int64)


def _whole_ciphertexts(src_ct, src_slot, sizes_in: Sequence[int], slots: int) -> Optional[List[int]]:
    """The input ciphertexts that become the output ones unchanged, or None when slots must move.

    ``sizes_in[c]`` is how many leading slots of input ciphertext c hold data
    (the rest are zero). Output ciphertext j takes the data of one input
    ciphertext, at the same slots, and all of it.
    """
    n = src_ct.size
    out_cts = max(1, -(-n // slots))
    picks = []
    for j in range(out_cts):
        lo, hi = j * slots, min(n, (j + 1) * slots)
        c = int(src_ct[lo]) if hi > lo else -1
        if c < 0:
            return None
        if not (np.all(src_ct[lo:hi] == c) and np.array_equal(src_slot[lo:hi], np.arange(hi - lo))):
            return None
        if sizes_in[c] != hi - lo:
            return None
        picks.append(c)
    return picks


def _plan(slots: int, in_cts: int, src_ct, src_slot):
    """A slot map that sends source (ct, slot) k to destination slot k of the flat packing."""
    n = src_ct.size
    dst = np.arange(n, dtype=np.int64)
    return _core.linalg_entry_map(int(slots), int(in_cts), int(max(1, -(-n // slots))), dst // slots, dst % slots,
                                  np.asarray(src_ct, dtype=np.int64), np.asarray(src_slot, dtype=np.int64),
                                  np.ones(n, dtype=np.complex128))


def _steps(slots: int, plan) -> List[int]:
    return sorted({int(s) % slots for s in plan.rotation_steps() if int(s) % slots})


def _move(ctx, ct, sizes_in, src_ct, src_slot, shape, like):
    """The flat tensor of ``shape`` whose element k is the source slot (src_ct[k], src_slot[k])."""
    slots = ctx.slots
    shape = tuple(int(s) for s in shape)
    src_ct = np.asarray(src_ct, dtype=np.int64).reshape(-1)
    src_slot = np.asarray(src_slot, dtype=np.int64).reshape(-1)
    if src_ct.size == 0:
        raise ValueError("the selection is empty; an encrypted tensor holds at least one element")
    picks = _whole_ciphertexts(src_ct, src_slot, sizes_in, slots) if sizes_in is not None else None
    if picks is not None:
        out = ct.copy() if picks == list(range(ct.batch)) else _core.linalg_gather(ctx._engine, ct, picks)
    else:
        if ct.level < 1:
            raise ValueError("moving elements between slots needs one level and the tensor is at level 0; "
                             "bootstrap it or select before the last multiplication")
        from .linalg.cache import workspace
        from .linalg.keypolicy import ensure

        plan = _plan(slots, ct.batch, src_ct, src_slot)
        ensure(ctx, _steps(slots, plan), "move elements between slots")  # auto_keys, key policy
        enc = plan.encoded(ctx._engine, int(ct.level), False)
        enc.work_bytes = workspace(ctx)
        out, _ = _core.linalg_apply_map(ctx._engine, ct, enc, 1)
    return type(like)._wrap(ctx, out, shape, like._complex, like._torch)._carry_from(like)


def _flat_sizes(x) -> Optional[List[int]]:
    """Filled leading slots per ciphertext of a flat tensor (None for matrix layouts)."""
    if x._layout is not None:
        return None
    slots = x.context.slots
    return [min(slots, x.size - c * slots) for c in range(x.num_ciphertexts)]


def gather(x, flat_index: np.ndarray, shape: Sequence[int]):
    """The tensor of ``shape`` whose element k is element ``flat_index[k]`` of x (row-major)."""
    ct_pos, slot_pos = _layout_positions(x)
    flat_index = np.asarray(flat_index, dtype=np.int64).reshape(-1)
    return _move(x.context, x._ct, _flat_sizes(x), ct_pos[flat_index], slot_pos[flat_index], shape, x)


def _check_key(key: Any) -> Any:
    items = key if isinstance(key, tuple) else (key,)
    for k in items:
        if k is None or k is Ellipsis or isinstance(k, slice):
            continue
        if isinstance(k, (bool, np.bool_)):
            raise IndexError("boolean indices are not supported on encrypted tensors")
        if isinstance(k, numbers.Integral):
            continue
        arr = np.asarray(k)
        if arr.dtype.kind not in "iu":
            raise IndexError(f"only integers, slices, None, ... and integer arrays index an encrypted tensor, "
                             f"not {type(k).__name__}; boolean masks would reveal which elements are selected")
    return key


def index_map(shape: Sequence[int], key: Any) -> np.ndarray:
    """The source indices (row-major) that ``x[key]`` selects, in the shape of the result."""
    _check_key(key)
    return np.arange(int(math.prod(shape)), dtype=np.int64).reshape(shape)[key]


def getitem(x, key: Any):
    """``x[key]`` with numpy's basic and integer-array indexing (see the module's costs)."""
    if not x.shape:
        raise IndexError("a 0-d encrypted tensor cannot be indexed")
    sel = index_map(x.shape, key)
    return gather(x, sel.reshape(-1), sel.shape)


def reshape(x, shape: Sequence[int]):
    """x with a new shape (one may be -1): free for the flat packing, one level for matrix layouts."""
    new = _resolve_shape(x.shape, shape)
    if x._layout is None:  # ciphertexts are never changed in place: the new tensor shares them
        return type(x)._wrap(x.context, x._ct, new, x._complex, x._torch)._carry_from(x)
    return gather(x, np.arange(x.size, dtype=np.int64), new)


def _resolve_shape(old: Sequence[int], shape: Sequence[int]) -> Tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise TypeError(f"shape entries must be integers, not {s!r}")
    shape = [int(s) for s in shape]
    size = int(math.prod(old))
    if shape.count(-1) > 1:
        raise ValueError("only one dimension of the new shape may be -1")
    if any(s < -1 or s == 0 for s in shape):
        raise ValueError(f"invalid shape {tuple(shape)}: dimensions must be positive (or one -1)")
    if -1 in shape:
        rest = int(math.prod(s for s in shape if s != -1))
        if size % rest:
            raise ValueError(f"cannot reshape a tensor of shape {tuple(old)} ({size} elements) into {tuple(shape)}")
        shape[shape.index(-1)] = size // rest
    if int(math.prod(shape)) != size:
        raise ValueError(f"cannot reshape a tensor of shape {tuple(old)} ({size} elements) into {tuple(shape)}")
    return tuple(shape)


def roll_map(shape: Sequence[int], shifts: Any, dims: Any = None) -> np.ndarray:
    """Source indices of ``numpy.roll(x, shifts, axis=dims)`` (flattened when dims is None)."""
    def _int(v, what):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise TypeError(f"roll {what} must be integers, not {v!r}")
        return int(v)

    src = np.arange(int(math.prod(shape)), dtype=np.int64).reshape(shape)
    if dims is None:
        if isinstance(shifts, (tuple, list)):
            raise ValueError("several shifts need as many dims")
        return np.roll(src.reshape(-1), _int(shifts, "shifts")).reshape(-1)
    if isinstance(shifts, (tuple, list)) != isinstance(dims, (tuple, list)):
        raise ValueError("give shifts and dims both as ints or both as sequences of one length")
    sh = [_int(s, "shifts") for s in shifts] if isinstance(shifts, (tuple, list)) else [_int(shifts, "shifts")]
    dm = [_int(d, "dims") for d in dims] if isinstance(dims, (tuple, list)) else [_int(dims, "dims")]
    if len(sh) != len(dm):
        raise ValueError("give as many shifts as dims")
    for d in dm:
        if not -len(shape) <= d < len(shape):
            raise ValueError(f"dim {d} out of range for a tensor of {len(shape)} dimension(s)")
    return np.roll(src, sh, axis=dm).reshape(-1)


def roll(x, shifts: Any, dims: Any = None):
    """``numpy.roll`` / ``torch.roll`` over the tensor's own elements."""
    if not x.shape:
        return reshape(x, ())
    return gather(x, roll_map(x.shape, shifts, dims), x.shape)


def is_cipher(t: Any) -> bool:
    """True for a CipherTensor (known by its fields: tensor.py imports this module, not the reverse)."""
    return hasattr(t, "_ct") and hasattr(t, "_layout") and hasattr(t, "_carry_from")


def _common(tensors: Sequence[Any], what: str):
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{what} takes a non-empty list or tuple of CipherTensors")
    for t in tensors:
        if not is_cipher(t):
            raise TypeError(f"{what} takes CipherTensors only, got {type(t).__name__}; encrypt it first")
        if t.context is not tensors[0].context:
            raise ValueError(f"cannot {what}: the tensors belong to different contexts")
    return tensors


def _check_dim(dim: Any, what: str) -> None:
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool) or int(dim) != 0:
        raise ValueError(f"hetensor.{what} joins along the first dimension only (dim=0), not dim={dim!r}; "
                         "the flat row-major packing makes other dimensions a full slot permutation")


def cat(tensors: Sequence[Any], dim: int = 0):
    """Concatenate CipherTensors along the first dimension (``torch.cat`` / ``numpy.concatenate``).

    Free when every tensor but the last fills whole ciphertexts (a regrouping
    of the batches); otherwise one level and the slot map's rotations. The
    tensors are brought to the lowest of their levels first.
    """
    tensors = _common(tensors, "cat")
    _check_dim(dim, "cat")
    first = tensors[0]
    if any(not t.shape for t in tensors):
        raise ValueError("cannot cat 0-d tensors; use hetensor.stack")
    if any(t.shape[1:] != first.shape[1:] for t in tensors):
        raise ValueError(f"cannot cat: shapes {[t.shape for t in tensors]} differ beyond the first dimension")
    ctx = first.context
    level = min(t.level for t in tensors)
    cts = [t._ct if t.level == level else t.level_to(level)._ct for t in tensors]
    items, src_ct, src_slot, sizes = [], [], [], []
    base = 0
    flat = all(t._layout is None for t in tensors)
    for t, c in zip(tensors, cts):
        ct_pos, slot_pos = _layout_positions(t)
        src_ct.append(ct_pos + base)
        src_slot.append(slot_pos)
        items.extend((c, i) for i in range(c.batch))
        if flat:
            sizes.extend(_flat_sizes(t))
        base += c.batch
    joined = _core.linalg_assemble(ctx._engine, items)
    shape = (sum(t.shape[0] for t in tensors),) + first.shape[1:]
    like = first if not any(t._complex for t in tensors) else next(t for t in tensors if t._complex)
    return _move(ctx, joined, sizes if flat else None, np.concatenate(src_ct), np.concatenate(src_slot), shape, like)


def stack(tensors: Sequence[Any], dim: int = 0):
    """Stack CipherTensors of one shape along a new first dimension (``torch.stack``): see :func:`cat`."""
    tensors = _common(tensors, "stack")
    _check_dim(dim, "stack")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"cannot stack: shapes {[t.shape for t in tensors]} differ")
    return cat([reshape(t, (1,) + t.shape) for t in tensors])


def rotation_steps(ctx, op: str, shape: Sequence[int], *args: Any) -> List[int]:
    """Rotation keys that ``x[key]`` (op "getitem": shape, key), ``x.roll(shifts, dims)`` (op
    "roll": shape, shifts, dims) or ``cat`` / ``stack`` (ops "cat", "stack": the shapes) of flat
    tensors need; [] when the operation is free."""
    slots = ctx.slots
    if op in ("cat", "stack"):
        shapes = [tuple(int(v) for v in s) for s in (shape,) + args]
        if op == "stack":
            shapes = [(1,) + s for s in shapes]
        src_ct, src_slot, sizes, base = [], [], [], 0
        for s in shapes:
            n = int(math.prod(s))
            cts = max(1, -(-n // slots))
            idx = np.arange(n, dtype=np.int64)
            src_ct.append(idx // slots + base)
            src_slot.append(idx % slots)
            sizes.extend(min(slots, n - c * slots) for c in range(cts))
            base += cts
        src_ct, src_slot = np.concatenate(src_ct), np.concatenate(src_slot)
        if _whole_ciphertexts(src_ct, src_slot, sizes, slots) is not None:
            return []
        return _policy_keys(ctx, _steps(slots, _plan(slots, base, src_ct, src_slot)))
    shape = tuple(int(s) for s in shape)
    size = int(math.prod(shape))
    if op == "getitem":
        sel = index_map(shape, args[0] if args else slice(None)).reshape(-1)
    elif op == "roll":
        sel = roll_map(shape, *args)
    else:
        raise ValueError(f"unknown op {op!r}")
    sizes = [min(slots, size - c * slots) for c in range(max(1, -(-size // slots)))]
    src_ct, src_slot = sel // slots, sel % slots
    if _whole_ciphertexts(src_ct, src_slot, sizes, slots) is not None:
        return []
    return _policy_keys(ctx, _steps(slots, _plan(slots, len(sizes), src_ct, src_slot)))


def _policy_keys(ctx, steps: List[int]) -> List[int]:
    """The keys that rotations by ``steps`` use under the context's key policy."""
    from .linalg.keypolicy import key_policy, keys_for_steps

    return keys_for_steps(ctx.slots, steps, key_policy(ctx))
