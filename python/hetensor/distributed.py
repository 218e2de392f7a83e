"""Data parallelism across processes through ``torch.distributed``.

Every rank holds the same evaluation keys and works on its shard of a batch;
encrypted results are combined with collectives of ``torch.distributed``
(gloo on CPUs, NCCL on GPUs; the same calls for both):

- :func:`broadcast_context` sends the evaluation keys once, as the bytes of
  ``ctx.public().to_bytes()`` (the secret key never leaves its rank).
- :func:`broadcast_tensor`, :func:`scatter_tensors` and
  :func:`all_gather_tensors` move encrypted tensors as their serialized bytes
  (hetensor's binary format, checked on load).
- :func:`all_reduce` sums an encrypted tensor over ranks as ring elements:
  the residues of every limb travel as int64 words, are summed by the
  collective, and each sum is reduced modulo that limb's prime q_i. The result
  is the same ciphertext, bit for bit, as adding the ranks' ciphertexts one by
  one in a single process. When ``world_size * q_max`` could overflow 63 bits
  the words are split in 32-bit halves first (twice the bytes, still exact).

:func:`stats` reports the bytes each rank handed to collectives, per kind of
operation. Start processes with ``torchrun`` (or any launcher) and call
``torch.distributed.init_process_group`` before these functions. With NCCL,
each rank first selects its own GPU (``torch.cuda.set_device(local_rank)``):
the collective buffers are made on the current GPU, and NCCL refuses two
ranks on one device. Device-resident tensors (``x.to("cuda:N")``) are copied
to host memory for the exchange; ``all_reduce`` returns its sum on ``x``'s
device.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .context import Context
from .tensor import CipherTensor

_INT63 = (1 << 63) - 1


@dataclass
class CommStats:
    """Bytes of the local buffers this rank handed to collectives, and calls,
    per operation (``"keys"``, ``"broadcast"``, ``"scatter"``, ``"all_gather"``,
    ``"all_reduce"``, ``"meta"`` for the small metadata exchanges)."""

    bytes: Dict[str, int] = field(default_factory=dict)
    calls: Dict[str, int] = field(default_factory=dict)

    def add(self, op: str, nbytes: int) -> None:
        self.bytes[op] = self.bytes.get(op, 0) + int(nbytes)
        self.calls[op] = self.calls.get(op, 0) + 1

    @property
    def total_bytes(self) -> int:
        """All bytes over all operations."""
        return sum(self.bytes.values())


_STATS = CommStats()


def stats() -> CommStats:
    """What this process has exchanged since the last :func:`reset_stats`."""
    return _STATS


def reset_stats() -> None:
    """Zero the counters of :func:`stats`."""
    global _STATS
    _STATS = CommStats()


# -- plumbing ---------------------------------------------------------------------------------


def _dist() -> Any:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a test/optional dependency
        raise ImportError("hetensor.distributed needs torch (pip install torch==2.13.0)") from None
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialized: call torch.distributed.init_process_group(...) "
                           "first (torchrun sets the environment it reads)")
    return dist


def _device(dist: Any, group: Any) -> Any:
    """Where collective buffers live: the current GPU for NCCL, the CPU otherwise."""
    import torch

    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _world(group: Any) -> Tuple[Any, int, int, Any]:
    dist = _dist()
    return dist, dist.get_rank(group), dist.get_world_size(group), _device(dist, group)


def _check_src(src: Any, world: int) -> int:
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < world:
        raise ValueError(f"src must be a rank in [0, {world}), got {src!r}")
    return src


def _bytes_tensor(data: bytes, length: int, device: Any) -> Any:
    import torch

    buf = torch.zeros(length, dtype=torch.uint8)
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return buf.to(device)


def _all_lengths(dist: Any, n: int, world: int, device: Any, group: Any) -> List[int]:
    import torch

    mine = torch.tensor([n], dtype=torch.int64, device=device)
    out = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(out, mine, group=group)
    _STATS.add("meta", 8)
    return [int(t.item()) for t in out]


def _broadcast_bytes(data: Optional[bytes], src: int, op: str, group: Any) -> bytes:
    import torch

    dist, rank, world, device = _world(group)
    n = torch.tensor([len(data) if rank == src else 0], dtype=torch.int64, device=device)
    dist.broadcast(n, src=src, group=group)
    length = int(n.item())
    buf = _bytes_tensor(data if rank == src else b"", length, device)
    dist.broadcast(buf, src=src, group=group)
    _STATS.add(op, length)
    return data if rank == src else bytes(buf.cpu().numpy().tobytes())


def _load_tensor(data: bytes, ctx: Context) -> CipherTensor:
    from .serialize import from_bytes

    out = from_bytes(data, ctx)
    if not isinstance(out, CipherTensor):
        raise TypeError(f"expected an encrypted tensor, received a {type(out).__name__}")
    return out


def _check_ctx(ctx: Any) -> Context:
    if not isinstance(ctx, Context):
        raise TypeError(f"ctx must be a hetensor.Context, got {type(ctx).__name__}")
    return ctx


def _check_tensor(x: Any, what: str) -> CipherTensor:
    """``x`` with its ciphertexts in host memory: collectives send serialized bytes
    or host limbs (a copy of device-resident residues, as ``x.to("cpu")``)."""
    if not isinstance(x, CipherTensor):
        raise TypeError(f"{what} must be a CipherTensor, got {type(x).__name__}")
    return x.to("cpu")


# -- keys and tensors as bytes ------------------------------------------------------------------


def broadcast_context(ctx: Optional[Context], *, src: int = 0, group: Any = None,
                      allow_insecure: bool = False) -> Context:
    """Give every rank the evaluation keys of ``ctx`` (held by rank ``src``).

    Rank ``src`` passes its Context and gets it back unchanged (with its
    secret key, if it has one); the other ranks pass None and get an
    evaluation-only Context loaded from ``ctx.public().to_bytes()``, bound to
    the same keys, so tensors serialized on any rank load on every other.
    Call it once: the keys are the largest object the ranks exchange.
    ``allow_insecure=True`` lets the receivers accept the parameters of an
    insecure test preset (as :func:`hetensor.load` does).
    """
    dist, rank, world, _ = _world(group)
    _check_src(src, world)
    data = None
    if rank == src:
        data = _check_ctx(ctx).public().to_bytes()
    elif ctx is not None:
        raise ValueError(f"broadcast_context: only rank {src} passes a Context; rank {rank} passes None")
    data = _broadcast_bytes(data, src, "keys", group)
    if rank == src:
        return ctx  # type: ignore[return-value]
    from .serialize import from_bytes

    out = from_bytes(data, allow_insecure=allow_insecure)
    if not isinstance(out, Context):
        raise TypeError(f"broadcast_context received a {type(out).__name__}, not a Context")
    return out


def broadcast_tensor(x: Optional[CipherTensor], ctx: Context, *, src: int = 0, group: Any = None) -> CipherTensor:
    """The encrypted tensor ``x`` of rank ``src`` on every rank (others pass None),
    e.g. the adapters every replica starts from."""
    dist, rank, world, _ = _world(group)
    _check_src(src, world)
    _check_ctx(ctx)
    data = _check_tensor(x, "x").to_bytes() if rank == src else None
    data = _broadcast_bytes(data, src, "broadcast", group)
    return x if rank == src else _load_tensor(data, ctx)  # type: ignore[return-value]


def shard_bounds(count: int, world: int) -> List[Tuple[int, int]]:
    """Contiguous shards of ``count`` items over ``world`` ranks, sizes differing
    by at most one, earlier ranks larger: ``[(start, stop)] * world``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world must be an integer >= 1, got {world!r}")
    q, r = divmod(count, world)
    out, start = [], 0
    for i in range(world):
        stop = start + q + (1 if i < r else 0)
        out.append((start, stop))
        start = stop
    return out


def scatter_tensors(items: Optional[Sequence[CipherTensor]], ctx: Context, *, src: int = 0,
                    group: Any = None) -> List[CipherTensor]:
    """Shard a list of encrypted tensors held by rank ``src`` over the ranks.

    Rank r receives ``items[start:stop]`` for ``(start, stop) =
    shard_bounds(len(items), world)[r]``, in order; other ranks pass None.
    Each item travels as its serialized bytes (fresh symmetric ciphertexts
    compressed to seeds).
    """
    import torch

    dist, rank, world, device = _world(group)
    _check_src(src, world)
    _check_ctx(ctx)
    if rank == src:
        if items is None or isinstance(items, CipherTensor):
            raise TypeError("scatter_tensors needs a list of CipherTensors on the source rank")
        items = [_check_tensor(x, "every item") for x in items]
        parts = [[x.to_bytes() for x in items[a:b]] for a, b in shard_bounds(len(items), world)]
        lens = [[len(p) for p in shard] for shard in parts]
        header = np.array([len(items)] + [n for shard in lens for n in shard], dtype=np.int64)
    elif items is not None:
        raise ValueError(f"scatter_tensors: only rank {src} passes items; rank {rank} passes None")
    # the item lengths first (every rank needs them to size its buffer)
    count = torch.tensor([header.size if rank == src else 0], dtype=torch.int64, device=device)
    dist.broadcast(count, src=src, group=group)
    meta = torch.zeros(int(count.item()), dtype=torch.int64, device=device)
    if rank == src:
        meta.copy_(torch.from_numpy(header))
    dist.broadcast(meta, src=src, group=group)
    _STATS.add("meta", 8 * (1 + meta.numel()))
    meta_np = meta.cpu().numpy()
    bounds = shard_bounds(int(meta_np[0]), world)
    sizes = meta_np[1:]
    shard_bytes = [int(sizes[a:b].sum()) for a, b in bounds]
    longest = max(shard_bytes) if shard_bytes else 0
    out_buf = torch.zeros(longest, dtype=torch.uint8, device=device)
    send = None
    if rank == src:
        send = [_bytes_tensor(b"".join(p), longest, device) for p in parts]
    dist.scatter(out_buf, scatter_list=send, src=src, group=group)
    _STATS.add("scatter", longest * (world if rank == src else 1))
    a, b = bounds[rank]
    raw, pos, out = out_buf.cpu().numpy().tobytes(), 0, []
    for n in sizes[a:b]:
        out.append(_load_tensor(raw[pos: pos + int(n)], ctx))
        pos += int(n)
    return out


def all_gather_tensors(local: Sequence[CipherTensor], ctx: Context, *, group: Any = None) -> List[CipherTensor]:
    """Every rank's list of encrypted tensors, concatenated in rank order, on
    every rank: the inverse of :func:`scatter_tensors` (results in the order
    of the original batch; this rank's own items as passed)."""
    import torch

    dist, rank, world, device = _world(group)
    _check_ctx(ctx)
    if isinstance(local, CipherTensor):
        raise TypeError("all_gather_tensors needs a list of CipherTensors (wrap a single tensor in a list)")
    mine = [_check_tensor(x, "every item").to_bytes() for x in local]
    counts = _all_lengths(dist, len(mine), world, device, group)
    sizes = torch.tensor([len(m) for m in mine], dtype=torch.int64)
    most = max(counts)
    padded = torch.zeros(most, dtype=torch.int64)
    padded[: len(mine)] = sizes
    table = [torch.zeros(most, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(table, padded.to(device), group=group)
    _STATS.add("meta", 8 * most)
    lens = [t.cpu().numpy()[:c] for t, c in zip(table, counts)]
    longest = max(int(v.sum()) for v in lens)
    bufs = [torch.zeros(longest, dtype=torch.uint8, device=device) for _ in range(world)]
    dist.all_gather(bufs, _bytes_tensor(b"".join(mine), longest, device), group=group)
    _STATS.add("all_gather", longest)
    out: List[CipherTensor] = []
    for r, buf in enumerate(bufs):
        if r == rank:
            out.extend(local)
            continue
        raw, pos = buf.cpu().numpy().tobytes(), 0
        for n in lens[r]:
            out.append(_load_tensor(raw[pos: pos + int(n)], ctx))
            pos += int(n)
    return out


# -- the modular all-reduce ---------------------------------------------------------------------


def needs_split(q: Sequence[int], world: int) -> bool:
    """True when a sum of ``world`` residues of some prime in ``q`` could exceed
    the int64 range, so the words travel as two 32-bit halves."""
    return world * (max(int(v) for v in q) - 1) > _INT63


def pack_limbs(limbs: np.ndarray, split: bool) -> np.ndarray:
    """The int64 words that the collective sums: the residues themselves, or
    (``split``) their low and high 32-bit halves stacked on a new first axis."""
    a = np.asarray(limbs)
    if a.dtype != np.uint64:
        raise TypeError(f"limbs must be uint64 residues, got {a.dtype}")
    if not split:
        return a.view(np.int64).copy()
    return np.stack([a & np.uint64(0xFFFFFFFF), a >> np.uint64(32)]).view(np.int64)


def unpack_sum(summed: np.ndarray, q: Sequence[int], split: bool) -> np.ndarray:
    """Residues mod q_i of the word sums from :func:`pack_limbs` (limb axis -2,
    shape [..., limbs, n]); exact for any number of summands that the
    collective's int64 words could hold."""
    s = np.asarray(summed)
    if s.dtype != np.int64:
        raise TypeError(f"sums must be int64, got {s.dtype}")
    if np.any(s < 0):
        raise ValueError("a limb sum overflowed int64 (negative word): too many ranks for unsplit words")
    limbs = s.shape[-2]
    qs = np.asarray([int(v) for v in q[:limbs]], dtype=np.uint64).reshape(limbs, 1)
    if not split:
        return s.view(np.uint64) % qs
    lo, hi = s[0].view(np.uint64) % qs, s[1].view(np.uint64) % qs
    for _ in range(32):  # hi * 2^32 mod q by doublings: values stay below 2q < 2^62
        hi = hi << np.uint64(1)
        hi = np.where(hi >= qs, hi - qs, hi)
    out = hi + lo
    return np.where(out >= qs, out - qs, out)


def _meta_row(x: CipherTensor) -> np.ndarray:
    ct = x._ct
    limbs = ct.limbs()
    shape_code = zlib.crc32(repr((x.shape, x.is_complex, x.layout)).encode())  # str hash() differs per process
    return np.array([int(ct.level), int(ct.size), int(ct.batch), int(limbs.shape[-1]),
                     int(np.float64(ct.scale).view(np.int64)), shape_code,
                     int(x.context._key_id) & ((1 << 62) - 1)], dtype=np.int64)


_META_NAMES = ("level", "polynomials per ciphertext (relinearize first)", "ciphertexts in the batch",
               "ring degree", "scale", "shape, layout or complex flag", "keys")


def all_reduce(x: CipherTensor, *, group: Any = None) -> CipherTensor:
    """The sum over ranks of the encrypted tensor ``x``, on every rank.

    Each rank passes its own ``x`` (same shape, layout, level, scale and
    keys on every rank; otherwise every rank raises ``ValueError`` naming
    what differs). The ciphertexts are summed as ring elements: residues as
    int64 words through ``torch.distributed.all_reduce``, then reduced modulo
    each limb's prime. The value bound of the result is the sum of the
    ranks' bounds. To average (as DDP does) multiply by ``1 / world_size``
    afterwards (one plaintext product).
    """
    import torch

    where = x.device if isinstance(x, CipherTensor) else None
    x = _check_tensor(x, "x")  # the residues go through the collective from host memory
    dist, rank, world, device = _world(group)
    # one small exchange so that mismatched inputs fail everywhere instead of summing garbage
    row = _meta_row(x)
    rows = [torch.zeros(row.size, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(rows, torch.from_numpy(row).to(device), group=group)
    _STATS.add("meta", row.nbytes)
    table = np.stack([r.cpu().numpy() for r in rows])
    bad = [name for j, name in enumerate(_META_NAMES) if np.any(table[:, j] != table[0, j])]
    if bad:
        raise ValueError(f"cannot all_reduce: the ranks' tensors differ in {', '.join(bad)}; every rank must pass "
                         "a tensor of the same shape, layout, level, scale and keys")
    bound = torch.tensor([float(x._ct.bound)], dtype=torch.float64, device=device)
    dist.all_reduce(bound, group=group)
    q = x.context._engine.q
    split = needs_split(q[: int(x._ct.level) + 1], world)
    words = torch.from_numpy(pack_limbs(x._ct.limbs(), split)).to(device)
    dist.all_reduce(words, group=group)
    _STATS.add("all_reduce", words.numel() * 8)
    residues = unpack_sum(words.cpu().numpy(), q, split)
    total = float(bound.item())
    if not math.isfinite(total):
        raise ValueError("cannot all_reduce: the sum of the ranks' value bounds is not finite")
    out = x._like(x._ct.with_limbs(residues, q, total))
    out._range = None  # per-rank intervals are client-side facts; the sum falls back to the bound
    return out.to(where)
