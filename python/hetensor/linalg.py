"""Packed matrix products on encrypted tensors: CPMM, CCMM, transpose, sums.

Every heavy step is one C++ call (``hetensor._core.linalg_*``): a block linear
map (Halevi-Shoup diagonals, baby-step giant-step, hoisted babies), a sum of
products of rotated ciphertexts with lazy relinearization, or a
rotate-and-sum. This module chooses the layouts and the algorithm, builds the
maps (numpy index arithmetic), caches encoded plaintexts, and counts what each
product cost (:class:`MatmulCost`, :func:`last_cost`). See docs/LINALG.md.

Products:

- ``X @ W`` (W plaintext, n x p): one block linear map; rotations
  O(ncb_in * sqrt(K) + ncb_out * sqrt(K)) per row block, one plaintext product
  per nonzero super-slot diagonal, one level. W is encoded once per layout and
  level (:class:`PlainMatrix`, or the content-hash cache for numpy/torch arrays).
- ``X @ Y`` (both encrypted): ``jkls`` (Jiang-Kim-Lauter-Song with
  row/column extension: two block maps then n hoisted rotation pairs and n
  lazily relinearized products; two levels) or ``diag`` (the right operand
  turned into encrypted broadcast diagonals, then a CPMM-like sum and a fold;
  for thin right operands with a long inner dimension). The cheaper one by
  predicted key switches is used.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._convert import is_torch_tensor, to_numpy
from .layout import FlatLayout, Layout, next_pow2

# ---------------------------------------------------------------------------
# cost accounting


@dataclass
class MatmulCost:
    """What one operation cost, counted per ciphertext.

    ``rotations`` are slot rotations (one key switch each; ``hoisted`` of them
    reused a decomposition), ``relinearizations`` the other key switches;
    ``plain_mults`` ciphertext x plaintext products, ``ct_mults``
    ciphertext x ciphertext (tensor) products; ``levels`` the levels consumed
    (the lower input level minus the output level); ``rotation_steps`` the
    distinct rotation keys used.
    """

    op: str = ""
    method: str = ""
    rotations: int = 0
    hoisted: int = 0
    decompositions: int = 0
    relinearizations: int = 0
    plain_mults: int = 0
    ct_mults: int = 0
    rescales: int = 0
    encodes: int = 0
    levels: int = 0
    rotation_steps: List[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def key_switches(self) -> int:
        return self.rotations + self.relinearizations

    def add(self, counts: Dict[str, int]) -> None:
        self.rotations += int(counts.get("rotations", 0))
        self.hoisted += int(counts.get("hoisted", 0))
        self.decompositions += int(counts.get("decompositions", 0))
        self.relinearizations += int(counts.get("relinearizations", 0))
        self.plain_mults += int(counts.get("plain_mults", 0))
        self.ct_mults += int(counts.get("tensor_products", 0))
        self.rescales += int(counts.get("rescales", 0))
        self.encodes += int(counts.get("encodes", 0))

    def steps(self, steps: Sequence[int], slots: int) -> None:
        have = set(self.rotation_steps)
        have.update(int(s) % slots for s in steps if int(s) % slots)
        self.rotation_steps = sorted(have)

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["key_switches"] = self.key_switches
        return d

    def __str__(self) -> str:
        return (
            f"{self.op}[{self.method}]: {self.rotations} rotations ({self.hoisted} hoisted), "
            f"{self.relinearizations} relinearizations, {self.plain_mults} pt-mults, {self.ct_mults} ct-mults, "
            f"{self.levels} level(s), {len(self.rotation_steps)} rotation keys"
        )


_tls = threading.local()


def last_cost() -> Optional[MatmulCost]:
    """The cost record of the last linalg operation in this thread (None before any)."""
    return getattr(_tls, "cost", None)


def _publish(cost: MatmulCost) -> MatmulCost:
    _tls.cost = cost
    return cost


# ---------------------------------------------------------------------------
# caches: plans (no keys, no encoding) and encoded maps, per context

_DEFAULT_BUDGET = 4 << 30
_caches: "weakref.WeakKeyDictionary[Any, Dict[str, Any]]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _cache(ctx) -> Dict[str, Any]:
    with _cache_lock:
        c = _caches.get(ctx)
        if c is None:
            c = {"plans": {}, "maps": {}, "bytes": 0, "budget": _DEFAULT_BUDGET, "weights": {}}
            _caches[ctx] = c
        return c


def set_plaintext_budget(ctx, nbytes: int) -> None:
    """Bytes of encoded diagonals a context may keep cached (default 4 GiB).

    Maps that do not fit are encoded on the fly at every use (slower, reported
    as ``encodes`` in the cost).
    """
    _cache(ctx)["budget"] = int(nbytes)


def set_key_policy(ctx, policy: str) -> None:
    """``"fast"`` (default): hoist every rotation of a product loop (one key per step).
    ``"few"``: chain the long side of a product loop (each rotation starts from the
    previous one: two or three keys instead of n, full key switches instead of
    hoisted ones). At N = 2^16 a rotation key takes 72 MiB, so "few" is what fits
    small machines. ``rotation_steps_for`` follows the policy."""
    if policy not in ("fast", "few"):
        raise ValueError("key policy must be 'fast' or 'few'")
    _cache(ctx)["keys"] = policy


def _chain(ctx, cand) -> Tuple[bool, bool]:
    """(chain_a, chain_b) of a product's loop under the context's key policy."""
    if _cache(ctx).get("keys", "fast") != "few":
        return False, False
    if cand["method"] == "jkls":
        side = cand["setup"]["loop"][1]
        return (side == "b", side == "a")
    return True, False


def _loop_steps(ctx, cand) -> List[int]:
    ca, cb = _chain(ctx, cand)
    return list(_core.linalg_bilinear_steps(int(ctx.slots), _rounds(cand["setup"]), bool(ca), bool(cb)))


def _rounds(setup) -> list:
    return [tuple(int(v) if i != 2 else v for i, v in enumerate(r)) for r in setup["rounds"]]


def clear_cache(ctx) -> None:
    """Drop every cached plan and encoded map of ``ctx``."""
    c = _cache(ctx)
    c["plans"].clear()
    c["maps"].clear()
    c["weights"].clear()
    c["bytes"] = 0


def _plan(ctx, key, build):
    plans = _cache(ctx)["plans"]
    p = plans.get(key)
    if p is None:
        p = build()
        plans[key] = p
    return p


def _encoded(ctx, key, plan, level: int):
    c = _cache(ctx)
    k = (key, level)
    m = c["maps"].get(k)
    if m is None:
        need = plan.diagonals * (level + 1) * ctx.ring_degree * 8
        cache = c["bytes"] + need <= c["budget"]
        m = plan.encoded(ctx._engine, int(level), bool(cache))
        if cache:
            c["bytes"] += int(m.nbytes)
        c["maps"][k] = m
    return m


def _entry_plan(slots: int, in_cts: int, out_cts: int, oc, os_, ic, is_, coef=None):
    oc = np.asarray(oc, dtype=np.int64).reshape(-1)
    coef = np.ones(oc.size, dtype=np.complex128) if coef is None else np.asarray(coef, dtype=np.complex128).reshape(-1)
    return _core.linalg_entry_map(int(slots), int(in_cts), int(out_cts), oc,
                                  np.asarray(os_, dtype=np.int64).reshape(-1),
                                  np.asarray(ic, dtype=np.int64).reshape(-1),
                                  np.asarray(is_, dtype=np.int64).reshape(-1), coef)


def _run_map(ctx, key, plan, ct, level: int, inner_groups: int, cost: MatmulCost):
    m = _encoded(ctx, key, plan, level)
    out, counts = _core.linalg_apply_map(ctx._engine, ct, m, int(inner_groups))
    cost.add(counts)
    cost.steps(plan.rotation_steps(), ctx.slots)
    return out


def _rotate_sum(ctx, ct, steps: Sequence[int], cost: MatmulCost):
    steps = [int(s) for s in steps]
    if not steps:
        return ct
    out, counts = _core.linalg_rotate_sum(ctx._engine, ct, steps)
    cost.add(counts)
    cost.steps(steps, ctx.slots)
    return out


def _doubling(count: int, unit: int, sign: int = 1) -> List[int]:
    """Steps sign * unit * 2^e for 2^e < next_pow2(count): x += rot(x, s) sums/copies `count` blocks."""
    return [sign * unit * (1 << e) for e in range(int(math.log2(next_pow2(count))))]


# ---------------------------------------------------------------------------
# tensors and layouts


def _ct_class():
    from .tensor import CipherTensor

    return CipherTensor


def layout_of(x) -> Any:
    """The Layout of a CipherTensor, or a FlatLayout for the plain packing."""
    lay = getattr(x, "_layout", None)
    return lay if lay is not None else FlatLayout(x.shape, x.context.slots)


def _make(ctx, ct, layout: Layout, like=None, is_complex: Optional[bool] = None):
    CT = _ct_class()
    cplx = bool(getattr(like, "_complex", False)) if is_complex is None else bool(is_complex)
    torch_out = bool(getattr(like, "_torch", False))
    return CT._wrap(ctx, ct, layout.shape, cplx, torch_out, layout)


def encrypt_matrix(ctx, x, layout=None, symmetric: bool = False):
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
    ct = ctx._engine.encrypt(rows, bool(symmetric), int(getattr(ctx, "_fresh_level", ctx.max_level)))
    CT = _ct_class()
    return CT._wrap(ctx, ct, lay.shape, np.iscomplexobj(arr), was_torch, lay)


def _is_matrix(x) -> bool:
    return getattr(x, "_layout", None) is not None


def _levels_of(*xs) -> int:
    return min(int(x.level) for x in xs)


def to_matrix(x, cost: Optional[MatmulCost] = None):
    """``x`` in a matrix Layout: itself, a free reinterpretation of the flat packing, or a conversion (one level)."""
    if _is_matrix(x):
        return x
    flat = FlatLayout(x.shape, x.context.slots)
    lay = flat.as_layout()
    if lay is not None:
        return _make(x.context, x._ct, lay, like=x)
    return relayout(x, _matrix_target(x.shape, x.context.slots), cost=cost)


def _matrix_target(shape, slots: int) -> Layout:
    """The layout a flat tensor is moved into: transposed, so a row keeps its slots' order (cheap map)."""
    shape = tuple(shape)
    if len(shape) not in (1, 2, 3):
        raise ValueError(f"matrix operations need a 1-D, 2-D or 3-D tensor, got shape {shape}")
    if len(shape) == 1:
        return Layout.for_matrix(shape, slots)
    return Layout.for_matrix(shape[:-2] + (shape[-1], shape[-2]), slots).T


def _resolve_layout(lay, slots: int, steps: set) -> Layout:
    """For rotation_steps_for: the matrix layout an operand is used in, adding conversion steps."""
    if isinstance(lay, Layout):
        return lay
    direct = lay.as_layout()
    if direct is not None:
        return direct
    target = _matrix_target(lay.shape, slots)
    ic, is_ = lay.positions()
    oc, os_ = target.positions()
    steps.update(_entry_plan(slots, lay.num_ciphertexts, target.num_ciphertexts, oc, os_, ic, is_).rotation_steps())
    return target


def relayout(x, target: Layout, cost: Optional[MatmulCost] = None):
    """``x`` moved into ``target`` (same logical shape) by one block linear map (one level, free when equal)."""
    ctx = x.context
    src = layout_of(x)
    if isinstance(src, Layout) and src.same_slots(target):
        if src.shape != target.shape:
            return _make(ctx, x._ct, target.replace(clean=src.clean), like=x)
        return x
    if math.prod(src.shape) != target.batch * target.rows * target.cols:
        raise ValueError(f"cannot move a tensor of shape {src.shape} into {target}")
    own = cost is None
    cost = cost or MatmulCost(op="relayout", method="map")
    t0 = time.perf_counter()
    level = int(x.level)
    key = ("relayout", _lkey(src), target.key())

    def build():
        ic, is_ = src.positions()
        oc, os_ = target.positions()
        return _entry_plan(ctx.slots, src.num_ciphertexts, target.num_ciphertexts, oc, os_, ic, is_)

    plan = _plan(ctx, key, build)
    ct = _run_map(ctx, key, plan, x._ct, level, 1, cost)
    out = _make(ctx, ct, target.replace(clean=True), like=x)
    if own:
        cost.levels = level - int(out.level)
        cost.seconds = time.perf_counter() - t0
        _publish(cost)
    return out


def _lkey(lay) -> tuple:
    return lay.key() if isinstance(lay, Layout) else ("flat", lay.shape, lay.slots)


def mask_padding(x, cost: Optional[MatmulCost] = None):
    """Zero every slot that holds no element (one plaintext product, one level); free when clean."""
    lay = x._layout
    if lay is None or lay.clean:
        return x
    own = cost is None
    cost = cost or MatmulCost(op="mask", method="plain")
    level = int(x.level)
    ct = x.context._engine.mul_values(x._ct, lay.mask())
    cost.plain_mults += lay.num_ciphertexts
    cost.rescales += lay.num_ciphertexts
    out = _make(x.context, ct, lay.replace(clean=True), like=x)
    if own:
        cost.levels = level - int(out.level)
        _publish(cost)
    return out


# ---------------------------------------------------------------------------
# plaintext matrices


def _weight_array(w) -> np.ndarray:
    arr = to_numpy(w, what="weight")
    if arr.ndim != 2:
        raise ValueError(f"a plaintext matrix must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr.astype(np.complex128))


class PlainMatrix:
    """A plaintext weight W, encoded once per (layout, level) and reused.

    ``X @ PlainMatrix(ctx, W)`` multiplies without re-encoding W for every
    input; ``X @ W`` with a numpy/torch W does the same through a cache keyed
    by W's content hash. Diagonals are kept while the context's budget allows
    (:func:`set_plaintext_budget`) and streamed (encoded at every use) beyond.
    """

    def __init__(self, ctx, w, *, name: str = "") -> None:
        self.context = ctx
        self.array = _weight_array(w)
        self.shape = self.array.shape
        self.name = name
        self.is_complex = bool(np.any(self.array.imag != 0))
        self._maps: Dict[Any, Any] = {}
        self._plans: Dict[Any, Any] = {}
        self._bytes = 0

    @property
    def T(self) -> "PlainMatrix":
        return PlainMatrix(self.context, self.array.T, name=self.name + ".T" if self.name else "")

    @property
    def nbytes(self) -> int:
        """Bytes of encoded diagonals held."""
        return self._bytes

    def __repr__(self) -> str:
        return f"PlainMatrix({self.shape[0]}x{self.shape[1]}, {len(self._maps)} encoding(s), {self._bytes} bytes)"

    def to_bytes(self) -> bytes:
        """The weights (not their encodings) in hetensor's binary format."""
        from .serialize import to_bytes

        return to_bytes(self)

    def save(self, file) -> None:
        """Write :meth:`to_bytes` to a path or binary file object."""
        from .serialize import save

        save(self, file)

    def __reduce__(self):
        from .serialize import reduce

        return reduce(self)

    def _plan(self, geom: tuple, right: bool, w: np.ndarray):
        key = (geom, right)
        p = self._plans.get(key)
        if p is None:
            p = _core.linalg_matmul_map(*geom, bool(right), w)
            self._plans[key] = p
        return p

    def _map(self, geom: tuple, right: bool, w: np.ndarray, level: int):
        key = (geom, right, level)
        m = self._maps.get(key)
        if m is None:
            plan = self._plan(geom, right, w)
            c = _cache(self.context)
            need = plan.diagonals * (level + 1) * self.context.ring_degree * 8
            cache = c["bytes"] + need <= c["budget"]
            m = plan.encoded(self.context._engine, int(level), bool(cache))
            if cache:
                c["bytes"] += int(m.nbytes)
                self._bytes += int(m.nbytes)
            self._maps[key] = m
        return m


def _as_plain(ctx, w) -> PlainMatrix:
    if isinstance(w, PlainMatrix):
        if w.context is not ctx:
            raise ValueError("the PlainMatrix was made for another context")
        return w
    arr = _weight_array(w)
    digest = hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest()
    key = (arr.shape, digest)
    weights = _cache(ctx)["weights"]
    pm = weights.get(key)
    if pm is None:
        pm = PlainMatrix(ctx, arr)
        weights[key] = pm
    return pm


def _geometry_right(lay: Layout, p: int):
    """(geometry, output layout kwargs) of Z = P W for the stored matrix P."""
    K = lay.K
    bc_out = min(p, K)
    nb_out = -(-p // bc_out)
    geom = (lay.slots, lay.bm, lay.br, lay.bc, lay.ncb, lay.br, bc_out, nb_out)
    return geom, dict(bm=lay.bm, br=lay.br, bc=bc_out)


def _geometry_left(lay: Layout, q: int):
    """(geometry, output layout kwargs) of Z = W P (rows of P mixed inside super-slots)."""
    br_out = min(q, lay.bm)
    nb_out = -(-q // br_out)
    geom = (lay.slots, lay.bm, lay.br, lay.bc, lay.nrb, br_out, lay.bc, nb_out)
    return geom, dict(bm=lay.bm, br=br_out, bc=lay.bc)


def _matmul_plain(x, w, left: bool, cost: MatmulCost):
    """x @ W (left=False) or W @ x (left=True), W plaintext."""
    ctx = x.context
    pm = _as_plain(ctx, w)
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
    geom, okw = _geometry_right(lay, wdim) if right else _geometry_left(lay, wdim)
    if right:
        inner_groups, in_cts = 1, lay.ncb
    else:
        inner_groups, in_cts = lay.ncb, lay.nrb
    level = int(x.level)
    if level < 1:
        raise ValueError("cannot multiply: the tensor is at level 0; no level is left for the product")
    Wc = np.ascontiguousarray(Wm)
    mp = pm._map(geom, right, Wc, level)
    out, counts = _core.linalg_apply_map(ctx._engine, x._ct, mp, inner_groups)
    cost.add(counts)
    cost.steps(mp.rotation_steps(), ctx.slots)
    # the diagonals are zero outside the blocks, so the product is clean whatever the input's padding held
    out_lay = Layout(out_matrix, ctx.slots, transposed=lay.transposed, clean=True, shape=out_shape, **okw)
    return _make(ctx, out, out_lay, like=x, is_complex=x._complex or pm.is_complex)


# ---------------------------------------------------------------------------
# encrypted x encrypted


def _batch_dims(bx: int, by: int) -> int:
    if bx == by or by == 1 or bx == 1:
        return max(bx, by)
    raise ValueError(f"cannot multiply batches of {bx} and {by} matrices")


def _tile_candidates(x: int) -> List[int]:
    return sorted({-(-x // k) for k in list(range(1, 65)) + [1 << e for e in range(7, 20)] if k <= x})


def _jkls_tile_list(slots: int, m: int, n: int, p: int, keep: int = 6, bms: Sequence[int] = ()):
    """Tilings (mt, nt, pt, bh) that fit, best first by a quick estimate of key switches."""
    cands = []
    for nt in _tile_candidates(n):
        for mt in _tile_candidates(m):
            bh = next_pow2(mt + nt - 1)
            if bh > slots:
                continue
            for pt in _tile_candidates(p):
                if bh * (nt + pt - 1) > slots:
                    continue
                nrt, nc, nq = -(-m // mt), -(-n // nt), -(-p // pt)
                loop = 0.6 * (min(nrt, nq) * nc * nt + max(nrt, nq) * nc * 2 * math.sqrt(nt)) + nrt * nq * math.sqrt(nt)
                maps = 6.0 * math.sqrt(mt + nt + pt) * (nrt * nc + nc * nq)
                score = loop + maps + 0.1 * nrt * nq * nc * nt
                cands.append((score, mt, nt, pt, bh))
    if not cands:
        raise ValueError(f"no tiling of a {m}x{n} @ {n}x{p} product fits {slots} slots")
    cands.sort()
    chosen = [c[1:] for c in cands[:keep]]
    # also the best tilings whose super-slots match an operand's (cheap sigma / tau maps)
    for bm in {b for b in bms if b}:
        same = [c[1:] for c in cands if c[4] == bm][:2]
        chosen += [c for c in same if c not in chosen]
    return chosen


def _jkls_loop(nt: int, bh: int, a_cts: int, b_cts: int, outputs: int):
    """(T, side, predicted weight) of the giant/baby split of the loop over t = g T + b."""
    best = None
    for T in range(1, nt + 1):
        groups = -(-nt // T)
        for side in ("b", "a"):
            a_rot, b_rot = (nt, T) if side == "b" else (T, nt)
            w = 0.6 * (a_cts * (a_rot - 1) + b_cts * (b_rot - 1)) + outputs * (2 * groups - 1)
            if best is None or w < best[2] - 1e-9:
                best = (T, side, w)
    return best


def _jkls_setup(slots: int, lx, ly, B: int, tiles):
    """Maps and rounds of the JKLS product for layouts lx (B?, m, n), ly (B?, n, p) and tiles (mt, nt, pt, bh)."""
    _, m, n = lx.matrix
    _, _, p = ly.matrix
    mt, nt, pt, bh = tiles
    nrt, nc, nq = -(-m // mt), -(-n // nt), -(-p // pt)
    ntc = [min(nt, n - c * nt) for c in range(nc)]
    # sigma: A(rt, c)[i + bh c'] = X[rt mt + i, c nt + (i + c') mod ntc]
    oc, os_, ic, is_ = [], [], [], []
    for rt in range(nrt):
        rows = min(mt, m - rt * mt)
        for c in range(nc):
            i, cp = np.meshgrid(np.arange(rows), np.arange(ntc[c] + pt - 1), indexing="ij")
            i, cp = i.reshape(-1), cp.reshape(-1)
            k = c * nt + (i + cp) % ntc[c]
            cti, sli = lx.index(0, rt * mt + i, k)
            oc.append(np.full(i.size, rt * nc + c)); os_.append(i + bh * cp); ic.append(cti); is_.append(sli)
    sigma = (np.concatenate(oc), np.concatenate(os_), np.concatenate(ic), np.concatenate(is_))
    # tau: B(c, q)[r + bh j] = Y[c nt + (r + j) mod ntc, q pt + j]
    oc, os_, ic, is_ = [], [], [], []
    for c in range(nc):
        for q in range(nq):
            cols = min(pt, p - q * pt)
            r, j = np.meshgrid(np.arange(mt + ntc[c] - 1), np.arange(cols), indexing="ij")
            r, j = r.reshape(-1), j.reshape(-1)
            k = c * nt + (r + j) % ntc[c]
            cti, sli = ly.index(0, k, q * pt + j)
            oc.append(np.full(r.size, c * nq + q)); os_.append(r + bh * j); ic.append(cti); is_.append(sli)
    tau = (np.concatenate(oc), np.concatenate(os_), np.concatenate(ic), np.concatenate(is_))
    bx, by = lx.batch, ly.batch
    outputs = B * nrt * nq
    T, side, loop_w = _jkls_loop(nt, bh, bx * nrt * nc, by * nc * nq, outputs)
    rounds = []
    for t in range(nt):
        terms = []
        for b in range(B):
            for rt in range(nrt):
                for q in range(nq):
                    for c in range(nc):
                        if t < ntc[c]:
                            terms.append(((b * nrt + rt) * nq + q,
                                          ((b if bx > 1 else 0) * nrt + rt) * nc + c,
                                          ((b if by > 1 else 0) * nc + c) * nq + q))
        g, bb = divmod(t, T)
        if side == "b":  # rot(A, bh t) rot(B, t) = rot(rot(A, bh t - gT) rot(B, b), gT)
            a_step, b_step, outer = bh * t - g * T, bb, g * T
        else:            # ... = rot(rot(A, bh b) rot(B, t - bh gT), bh gT)
            a_step, b_step, outer = bh * bb, t - bh * g * T, bh * g * T
        rounds.append((a_step, b_step, np.asarray(terms, dtype=np.int64).reshape(-1), outer))
    out = Layout((B, m, p), slots, bm=bh, br=mt, bc=pt, clean=False)
    return dict(tiles=(mt, nt, pt, bh), counts=(nrt, nc, nq), sigma=sigma, tau=tau, rounds=rounds, out=out,
                loop=(T, side, loop_w))


def _diag_setup(slots: int, lx: Layout, ly, B: int, rows: int = 1):
    """Plans of the broadcast-diagonal product (thin right operands); None when it does not apply.

    The map writes the diagonals into ``rows`` rows of every super-slot; log2(br / rows)
    doubling rotations copy them to the other rows.
    """
    if not isinstance(lx, Layout) or lx.transposed:
        return None
    _, m, n = lx.matrix
    _, _, p = ly.matrix
    K, bm, br, bc, nrb, ncb = lx.K, lx.bm, lx.br, lx.bc, lx.nrb, lx.ncb
    pp = next_pow2(p)
    if pp > K:
        return None
    rows = min(next_pow2(rows), next_pow2(br))
    # E'(a, d)[i + bm t] = Y[a bc + (t + d) mod K, t mod pp] for i < rows
    t = np.arange(K)
    oc, os_, ic, is_ = [], [], [], []
    for a in range(ncb):
        for d in range(pp):
            u = (t + d) % K
            k = a * bc + u
            j = t % pp
            ok = (u < bc) & (k < n) & (j < p)
            if not np.any(ok):
                continue
            cti, sli = ly.index(0, k[ok], j[ok])
            for i in range(rows):
                oc.append(np.full(int(ok.sum()), a * pp + d)); os_.append(i + bm * t[ok]); ic.append(cti)
                is_.append(sli)
    emap = (np.concatenate(oc), np.concatenate(os_), np.concatenate(ic), np.concatenate(is_))
    bx, by = lx.batch, ly.batch
    rounds = []
    for d in range(pp):
        terms = []
        for b in range(B):
            for rb in range(nrb):
                for a in range(ncb):
                    terms.append((b * nrb + rb, ((b if bx > 1 else 0) * nrb + rb) * ncb + a,
                                  ((b if by > 1 else 0) * ncb + a) * pp + d))
        rounds.append((bm * d, 0, np.asarray(terms, dtype=np.int64).reshape(-1)))
    replicate = [-rows * (1 << e) for e in range(int(math.log2(next_pow2(br) // rows)))]
    fold = [bm * pp * (1 << e) for e in range(int(math.log2(K // pp)))]
    out = Layout((B, m, p), slots, bm=bm, br=br, bc=p, clean=False)
    return dict(emap=emap, e_cts=ncb * pp, rounds=rounds, replicate=replicate, fold=fold, out=out, pp=pp, rows=rows)


def _predict_keyswitches(counts: Dict[str, int]) -> float:
    return 0.6 * counts.get("hoisted", 0) + (counts.get("rotations", 0) - counts.get("hoisted", 0)) \
        + counts.get("relinearizations", 0)


def _ccmm_plans(ctx, lx, ly, B: int):
    """Both algorithms' plans and predicted costs: {method: (setup, plans, predicted key switches, key)}."""
    slots = ctx.slots
    out = {}
    kx, ky = _lkey(lx), _lkey(ly)
    _, m, n = lx.matrix
    _, _, p = ly.matrix

    def jkls_for(tiles):
        key = ("jkls", kx, ky, B, tiles)
        setup = _plan(ctx, key + ("setup",), lambda: _jkls_setup(slots, lx, ly, B, tiles))
        nrt, nc, nq = setup["counts"]
        sp = _plan(ctx, key + ("sigma",), lambda: _entry_plan(slots, lx.num_ciphertexts // lx.batch, nrt * nc,
                                                              *setup["sigma"]))
        tp = _plan(ctx, key + ("tau",), lambda: _entry_plan(slots, ly.num_ciphertexts // ly.batch, nc * nq,
                                                            *setup["tau"]))
        pred = _predict_keyswitches(sp.predicted(lx.batch)) + _predict_keyswitches(tp.predicted(ly.batch))
        pred += setup["loop"][2]
        return (setup, (sp, tp), pred, key)

    choice = _plan(ctx, ("jkls-choice", kx, ky, B), lambda: min(
        (jkls_for(t) for t in _jkls_tile_list(slots, m, n, p, bms=(getattr(lx, "bm", 0), getattr(ly, "bm", 0)))),
        key=lambda r: r[2])[0]["tiles"])
    out["jkls"] = jkls_for(choice)
    def diag_for(rows):
        dkey = ("diag", kx, ky, B, rows)
        ds = _plan(ctx, dkey + ("setup",), lambda: _diag_setup(slots, lx, ly, B, rows))
        if ds is None:
            return None
        ep = _plan(ctx, dkey + ("emap",), lambda: _entry_plan(slots, ly.num_ciphertexts // ly.batch, ds["e_cts"],
                                                              *ds["emap"]))
        nrb, ncb = lx.nrb, lx.ncb
        pred = _predict_keyswitches(ep.predicted(ly.batch)) + ly.batch * ds["e_cts"] * len(ds["replicate"])
        pred += 0.6 * B * nrb * ncb * (ds["pp"] - 1) + B * nrb * (1 + len(ds["fold"]))
        return (ds, (ep,), pred, dkey)

    if isinstance(lx, Layout) and not lx.transposed and next_pow2(p) <= lx.K:
        def pick():
            opts = [r for r in (diag_for(rows) for rows in (1, 4, 16, 32)) if r is not None]
            return min(opts, key=lambda r: r[2])[0]["rows"] if opts else None
        rows = _plan(ctx, ("diag-choice", kx, ky, B), pick)
        if rows is not None:
            out["diag"] = diag_for(rows)
    return out


def _untransposed(lay: Layout) -> Layout:
    """The same matrix stored non-transposed at the same super-slot height (a cheap transpose map)."""
    return Layout(lay.matrix, lay.slots, bm=lay.bm, transposed=False, shape=lay.shape)


def _relayout_plan(ctx, src, dst):
    key = ("relayout", _lkey(src), dst.key())

    def build():
        ic, is_ = src.positions()
        oc, os_ = dst.positions()
        return _entry_plan(ctx.slots, src.num_ciphertexts, dst.num_ciphertexts, oc, os_, ic, is_)

    return key, _plan(ctx, key, build)


def _ccmm_candidates(ctx, lx, ly, B: int, method: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every way to run x @ y: each algorithm on the operands as stored, and (for operands stored
    transposed) after moving them into a non-transposed layout first (one more level). Best first."""
    xs = [None] + ([_untransposed(lx)] if lx.transposed else [])
    ys = [None] + ([_untransposed(ly)] if ly.transposed else [])
    out = []
    for px in xs:
        for py in ys:
            extra = 0.0
            for pre, src in ((px, lx), (py, ly)):
                if pre is not None:
                    extra += _predict_keyswitches(_relayout_plan(ctx, src, pre)[1].predicted(src.batch))
            plans = _ccmm_plans(ctx, px or lx, py or ly, B)
            for meth, (setup, mps, pred, key) in plans.items():
                if method is not None and meth != method:
                    continue
                out.append(dict(method=meth, pre_x=px, pre_y=py, setup=setup, maps=mps, pred=pred + extra, key=key,
                                lx=px or lx, ly=py or ly))
    out.sort(key=lambda c: c["pred"])
    return out


def _candidate_steps(ctx, cand, lx, ly) -> set:
    steps = set()
    for pre, src in ((cand["pre_x"], lx), (cand["pre_y"], ly)):
        if pre is not None:
            steps.update(_relayout_plan(ctx, src, pre)[1].rotation_steps())
    for p in cand["maps"]:
        steps.update(p.rotation_steps())
    steps.update(_loop_steps(ctx, cand))
    steps.update(cand["setup"].get("replicate", []))
    steps.update(cand["setup"].get("fold", []))
    return steps


def _matmul_cc(x, y, cost: MatmulCost, method: Optional[str] = None):
    ctx = x.context
    if y.context is not ctx:
        raise ValueError("cannot multiply: the tensors belong to different contexts; encrypt both with one Context")
    lx = layout_of(x)
    ly = layout_of(y)
    xs, ys = tuple(lx.shape), tuple(ly.shape)
    if len(xs) == 0 or len(ys) == 0:
        raise ValueError("matmul needs tensors with at least one dimension")
    # Vectors: x (n,) is a row, y (n,) a column (numpy semantics).
    if len(ys) == 1 and not _is_matrix(y):
        y = relayout(y, Layout((ys[0], 1), ctx.slots, shape=ys), cost=cost)
        ly = y._layout
    x = to_matrix(x, cost)
    y = to_matrix(y, cost)
    lx, ly = x._layout, y._layout
    if len(ys) == 1 and ly.matrix[1] == 1 and ly.matrix[2] == ys[0]:
        ly = ly.T  # a row-stored vector used as a column
        y = _make(ctx, y._ct, ly, like=y)
    bx, m, n = lx.matrix
    by, n2, p = ly.matrix
    if n != n2:
        raise ValueError(f"cannot multiply: shapes {xs} and {ys} do not align ({n} != {n2})")
    B = _batch_dims(bx, by)
    if min(int(x.level), int(y.level)) < 2 and method != "diag":
        if min(int(x.level), int(y.level)) < 1:
            raise ValueError("cannot multiply: an operand is at level 0")
    cands = _ccmm_candidates(ctx, lx, ly, B, method)
    if not cands:
        raise ValueError(f"method {method!r} does not apply to {xs} @ {ys}; use 'jkls' or 'diag'")
    level = min(int(x.level), int(y.level))

    def need(c):
        base = 2 if c["method"] == "jkls" else (1 if int(x.level) < int(y.level) else 2)
        return base + (1 if c["pre_x"] is not None or c["pre_y"] is not None else 0)

    fits = [c for c in cands if need(c) <= level]
    if not fits:
        raise ValueError(f"cannot multiply: the product needs {min(need(c) for c in cands)} levels and the operands "
                         f"have {level}; bootstrap or start from a higher level")
    cand = fits[0]
    ylev = int(y.level) if (cand["method"] == "diag" and int(x.level) < int(y.level)) else level
    yct = _right_side(ctx, cand, y, ylev, cost)
    ct = _left_side_and_loop(ctx, cand, x, yct, B, cost)
    setup = cand["setup"]
    out_lay: Layout = setup["out"]
    shape = (B, m, p) if (len(xs) == 3 or len(ys) == 3) else (m, p)
    if len(xs) == 1:
        shape = shape[:-2] + (p,)
    if len(ys) == 1:
        shape = shape[:-1]
    out_lay = out_lay.replace(shape=shape)
    return _make(ctx, ct, out_lay, like=x, is_complex=x._complex or y._complex)


def _right_side(ctx, cand, y, level: int, cost: MatmulCost):
    """The right operand in the form the product's loop reads (tau for jkls, broadcast diagonals for diag)."""
    if cand["pre_y"] is not None:
        y = relayout(y, cand["pre_y"], cost=cost)
        level = min(level, int(y.level))
    setup, key = cand["setup"], cand["key"]
    if cand["method"] == "jkls":
        tp = cand["maps"][1]
        _require(ctx, tp.rotation_steps())
        return _run_map(ctx, key + ("tau",), tp, y._ct, level, 1, cost)
    (ep,) = cand["maps"]
    _require(ctx, [*ep.rotation_steps(), *setup["replicate"]])
    E = _run_map(ctx, key + ("emap",), ep, y._ct, level, 1, cost)
    return _rotate_sum(ctx, E, setup["replicate"], cost)


def _left_side_and_loop(ctx, cand, x, yct, B: int, cost: MatmulCost):
    """The left operand's map (jkls) and the loop of products; returns the product's ciphertexts."""
    if cand["pre_x"] is not None:
        x = relayout(x, cand["pre_x"], cost=cost)
    setup, key, method = cand["setup"], cand["key"], cand["method"]
    cost.method = method + ("+transpose" if cand["pre_x"] is not None or cand["pre_y"] is not None else "")
    chain_a, chain_b = _chain(ctx, cand)
    loop_steps = _loop_steps(ctx, cand)
    if method == "jkls":
        sp = cand["maps"][0]
        _require(ctx, [*sp.rotation_steps(), *loop_steps])
        level = min(int(x.level), int(yct.level) + 1)
        A = _run_map(ctx, key + ("sigma",), sp, x._ct, level, 1, cost)
        nrt, nc, nq = setup["counts"]
        ct, counts = _core.linalg_bilinear(ctx._engine, A, yct, _rounds(setup), B * nrt * nq, chain_a, chain_b)
        cost.add(counts)
        cost.steps(loop_steps, ctx.slots)
        return ct
    _require(ctx, [*loop_steps, *setup["fold"]])
    ct, counts = _core.linalg_bilinear(ctx._engine, x._ct, yct, _rounds(setup), B * cand["lx"].nrb, chain_a, chain_b)
    cost.add(counts)
    cost.steps(loop_steps, ctx.slots)
    return _rotate_sum(ctx, ct, setup["fold"], cost)


class PreparedMatrix:
    """An encrypted right operand moved once into the form its products with
    left operands of one layout read (``prepare(y, left_layout)``).

    Like :class:`PlainMatrix` for plaintext weights: a weight applied to many
    activations (a LoRA adapter over a batch of sequences) pays the
    conversion once (``.cost``); each ``x @ prepared`` then costs only the
    left operand's side and the loop of products.
    """

    def __init__(self, y, left: Layout, method: Optional[str] = None) -> None:
        ctx = y.context
        y = to_matrix(y)
        ly = y._layout
        if len(ly.shape) != 2:
            raise ValueError("prepare takes a 2-D right operand")
        if not isinstance(left, Layout) or left.cols != ly.rows:
            raise ValueError(f"cannot prepare a {ly.shape} operand for a left operand in {left}")
        cands = _ccmm_candidates(ctx, left, ly, left.batch, method)
        if not cands:
            raise ValueError(f"method {method!r} does not apply")
        self.context = ctx
        self.left_key = left.key()
        self.cand = cands[0]
        self.shape = tuple(ly.shape)
        self._complex = y._complex
        self.cost = MatmulCost(op="prepare", method=self.cand["method"])
        t0 = time.perf_counter()
        level = int(y.level)
        self.ct = _right_side(ctx, self.cand, y, level, self.cost)
        self.cost.levels = level - int(self.ct.level)
        self.cost.seconds = time.perf_counter() - t0
        _publish(self.cost)

    @property
    def level(self) -> int:
        return int(self.ct.level)

    def __repr__(self) -> str:
        return (f"PreparedMatrix({self.shape[0]}x{self.shape[1]}, {self.cand['method']}, level {self.level}, "
                f"{self.ct.batch} ciphertext(s))")


def prepare(y, left, method: Optional[str] = None) -> PreparedMatrix:
    """``y`` (encrypted) prepared for ``x @ y`` with x in ``left`` (a Layout or a CipherTensor)."""
    lay = left if isinstance(left, Layout) else to_matrix(left)._layout
    return PreparedMatrix(y, lay, method)


def _matmul_prepared(x, y: PreparedMatrix, cost: MatmulCost):
    ctx = x.context
    if y.context is not ctx:
        raise ValueError("cannot multiply: the prepared operand belongs to another context")
    x = to_matrix(x, cost)
    if x._layout.key() != y.left_key:
        raise ValueError(f"cannot multiply: the operand was prepared for another left layout than {x._layout}; "
                         "prepare it for this one (hetensor.linalg.prepare)")
    if min(int(x.level), y.level + 1) < (2 if y.cand["method"] == "jkls" else 1):
        raise ValueError("cannot multiply: not enough levels left for the product")
    lx = x._layout
    ct = _left_side_and_loop(ctx, y.cand, x, y.ct, lx.batch, cost)
    b, m, _ = lx.matrix
    p = y.shape[1]
    shape = lx.shape[:-1] + (p,) if len(lx.shape) >= 2 else (p,)
    out_lay = y.cand["setup"]["out"].replace(shape=shape)
    return _make(ctx, ct, out_lay, like=x, is_complex=x._complex or y._complex)


def suggest_layout(ctx, left: Layout, shape: Sequence[int]) -> Layout:
    """The layout to encrypt a right operand of ``shape`` in, for ``x @ y`` with x in ``left``.

    Tries every super-slot height, stored as is and transposed, and returns
    the one with the fewest predicted key switches for the product (LoRA
    adapters and other encrypted weights are encrypted once and used many
    times, so their layout is worth choosing).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError("suggest_layout takes the right operand's 2-D shape")
    n, p = shape
    B = left.batch

    def score():
        best = None
        bms = {left.bm // 2, left.bm, 2 * left.bm, next_pow2(n), next_pow2(p), next_pow2(left.rows + p - 1),
               next_pow2(left.rows + n - 1)}
        for bm in sorted(b for b in bms if 1 <= b <= ctx.slots):
            for lay in (Layout((n, p), ctx.slots, bm=bm), Layout((p, n), ctx.slots, bm=bm).T):
                if lay.num_ciphertexts > 64:
                    continue
                cands = _ccmm_candidates(ctx, left, lay, B)
                if cands and (best is None or cands[0]["pred"] < best[0]):
                    best = (cands[0]["pred"], lay)
        return best[1]

    return _plan(ctx, ("suggest", _lkey(left), shape), score)


def _require(ctx, steps) -> None:
    ctx._engine.require_rotation_keys(sorted({int(s) % ctx.slots for s in steps if int(s) % ctx.slots}))


# ---------------------------------------------------------------------------
# public entry points


def matmul(a, b, *, method: Optional[str] = None, return_cost: bool = False):
    """``a @ b`` where at least one side is a CipherTensor; the other may be a
    CipherTensor, a PlainMatrix, or a numpy/torch array.

    ``method`` forces the encrypted x encrypted algorithm (``"jkls"`` or
    ``"diag"``). The cost is in :func:`last_cost` (and returned with
    ``return_cost=True``).
    """
    CT = _ct_class()
    t0 = time.perf_counter()
    if isinstance(a, CT) and isinstance(b, PreparedMatrix):
        cost = MatmulCost(op="ccmm")
        level = min(int(a.level), b.level)
        out = _matmul_prepared(a, b, cost)
    elif isinstance(a, CT) and isinstance(b, CT):
        cost = MatmulCost(op="ccmm")
        level = min(int(a.level), int(b.level))
        out = _matmul_cc(a, b, cost, method)
    elif isinstance(a, CT):
        cost = MatmulCost(op="cpmm", method="diagonal-bsgs")
        level = int(a.level)
        out = _matmul_plain(a, b, False, cost)
    elif isinstance(b, CT):
        cost = MatmulCost(op="pcmm", method="diagonal-bsgs")
        level = int(b.level)
        out = _matmul_plain(b, a, True, cost)
    else:
        raise TypeError("matmul needs at least one CipherTensor")
    cost.levels = level - int(out.level)
    cost.seconds = time.perf_counter() - t0
    _publish(cost)
    return (out, cost) if return_cost else out


def transpose(x):
    """X^T: free for matrix layouts (the layout's flag flips)."""
    if len(x.shape) < 2:
        return x
    cost = MatmulCost(op="transpose", method="flag")
    level = int(x.level)
    x = to_matrix(x, cost)
    out = _make(x.context, x._ct, x._layout.T, like=x)
    cost.levels = level - int(out.level)
    _publish(cost)
    return out


def materialize_transpose(x):
    """X^T stored non-transposed (moves the slots: one block linear map, one level)."""
    t = transpose(x)
    lay = t._layout
    if not lay.transposed:
        return t
    target = Layout(lay.matrix, lay.slots, bm=lay.bm, br=min(lay.rows, lay.bm), transposed=False, shape=lay.shape)
    return relayout(t, target)


def _sum_rows_physical(ctx, ct, lay: Layout, cost: MatmulCost):
    """Sum over the stored rows: result stored as one row per item (row 0 of each super-slot)."""
    eng = ctx._engine
    pm, pn = lay.physical
    nrb, ncb = lay.nrb, lay.ncb
    if nrb > 1:
        total = None
        for rb in range(nrb):
            idx = [it * lay.per_item + rb * ncb + cb for it in range(lay.batch) for cb in range(ncb)]
            part = _core.linalg_gather(eng, ct, idx)
            total = part if total is None else eng.add(total, part)
        ct = total
    ct = _rotate_sum(ctx, ct, _doubling(min(pm, lay.br), 1), cost)
    return ct, dict(bm=lay.bm, br=1, bc=lay.bc), (1, pn)


def _sum_cols_physical(ctx, ct, lay: Layout, cost: MatmulCost):
    eng = ctx._engine
    pm, pn = lay.physical
    nrb, ncb = lay.nrb, lay.ncb
    if ncb > 1:
        total = None
        for cb in range(ncb):
            idx = [it * lay.per_item + rb * ncb + cb for it in range(lay.batch) for rb in range(nrb)]
            part = _core.linalg_gather(eng, ct, idx)
            total = part if total is None else eng.add(total, part)
        ct = total
    ct = _rotate_sum(ctx, ct, _doubling(min(pn, lay.bc), lay.bm), cost)
    return ct, dict(bm=lay.bm, br=lay.br, bc=1), (pm, 1)


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
        total = None
        for it in range(b):
            part = _core.linalg_gather(ctx._engine, ct, list(range(it * lay.per_item, (it + 1) * lay.per_item)))
            total = part if total is None else ctx._engine.add(total, part)
        ct = total
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
    out = _make(ctx, ct, out_lay, like=x)
    cost.levels = level - int(out.level)
    _publish(cost)
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
        steps += _doubling(span, unit, -1)
        if next_pow2(span) != span or count % block:
            clean = False
    bb, rr, cc = bb[keep], rr[keep], cc[keep]
    oc, os_ = target.index(bb, rr, cc)
    vidx = (np.where(vb == 1, 0, bb) * vm * vn + np.where(vm == 1, 0, rr) * vn + np.where(vn == 1, 0, cc))
    sc, ss = src.positions()
    return (oc, os_, sc[vidx], ss[vidx]), steps, clean


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
    key = ("broadcast", _lkey(src), target.key())
    if isinstance(src, Layout) and src.clean and src.num_ciphertexts == target.num_ciphertexts and \
            np.array_equal(ic, oc) and np.array_equal(is_, os_):
        ct = v._ct  # already in place
    else:
        plan = _plan(ctx, key, lambda: _entry_plan(ctx.slots, src.num_ciphertexts, target.num_ciphertexts,
                                                   oc, os_, ic, is_))
        ct = _run_map(ctx, key, plan, v._ct, level, 1, cost)
    ct = _rotate_sum(ctx, ct, rep_steps, cost)
    out = _make(ctx, ct, target.replace(clean=bool(clean)), like=v)
    if own:
        cost.levels = level - int(out.level)
        _publish(cost)
    return out


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
                a = _make(ctx, a._ct, la.replace(clean=False), like=a)
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


# ---------------------------------------------------------------------------
# rotation keys up front


def rotation_steps_for(ctx, op: str, *shapes, layouts: Optional[Sequence[Optional[Layout]]] = None,
                       method: Optional[str] = None, dim=None) -> List[int]:
    """Rotation steps (normalized to [1, slots)) that ``op`` needs for operands of these shapes.

    op: ``"cpmm"`` (x @ W, shapes x, W), ``"pcmm"`` (W @ x, shapes W, x), ``"ccmm"``
    (x @ y), ``"matmul"`` (like ccmm), ``"sum"`` (shape, dim=...), ``"broadcast"``
    (vector shape, target shape), ``"relayout"`` (source shape; layouts=[src, dst]).
    ``layouts`` gives the operands' layouts (default: ``Layout.for_matrix``).
    """
    slots = ctx.slots
    lays = list(layouts or [])
    while len(lays) < len(shapes):
        lays.append(None)

    steps: set = set()

    def lay(i, shape):
        l = lays[i]
        if l is None:
            return Layout.for_matrix(tuple(shape), slots)
        return l if op == "relayout" else _resolve_layout(l, slots, steps)

    if op in ("cpmm", "pcmm"):
        if len(shapes) != 2:
            raise ValueError(f"{op} takes two shapes")
        xi, wi = (0, 1) if op == "cpmm" else (1, 0)
        lx = lay(xi, shapes[xi])
        w = np.ones(tuple(shapes[wi]), dtype=np.complex128)
        left = op == "pcmm"
        if not left:
            right, Wm = (False, w.T) if lx.transposed else (True, w)
        else:
            right, Wm = (True, w.T) if lx.transposed else (False, w)
        wdim = Wm.shape[1] if right else Wm.shape[0]
        geom, _ = _geometry_right(lx, wdim) if right else _geometry_left(lx, wdim)
        plan = _core.linalg_matmul_map(*geom, bool(right), np.ascontiguousarray(Wm))
        steps.update(plan.rotation_steps())
    elif op in ("ccmm", "matmul"):
        if len(shapes) != 2:
            raise ValueError(f"{op} takes two shapes")
        lx = lay(0, shapes[0])
        if len(shapes[1]) == 1 and not isinstance(lays[1], Layout):
            col = Layout((shapes[1][0], 1), slots, shape=tuple(shapes[1]))
            src = lays[1] if lays[1] is not None else FlatLayout(shapes[1], slots)
            ic, is_ = src.positions()
            oc, os_ = col.positions()
            steps.update(_entry_plan(slots, src.num_ciphertexts, col.num_ciphertexts, oc, os_, ic, is_)
                         .rotation_steps())
            ly = col
        else:
            ly = lay(1, shapes[1])
        B = _batch_dims(lx.batch, ly.batch)
        cands = _ccmm_candidates(ctx, lx, ly, B, method)
        if not cands:
            raise ValueError(f"method {method!r} does not apply to {tuple(shapes[0])} @ {tuple(shapes[1])}")
        steps.update(_candidate_steps(ctx, cands[0], lx, ly))
    elif op == "sum":
        lx = lay(0, shapes[0])
        pm, pn = lx.physical
        steps.update(_doubling(min(pm, lx.br), 1))
        steps.update(_doubling(min(pn, lx.bc), lx.bm))
    elif op == "broadcast":
        if len(shapes) != 2:
            raise ValueError("broadcast takes the vector's shape and the target's shape")
        src = lays[0] if lays[0] is not None else Layout.for_matrix(tuple(shapes[0]), slots)
        target = lay(1, shapes[1])
        (oc, os_, ic, is_), rep, _ = _broadcast_setup(src, target)
        steps.update(rep)
        plan = _entry_plan(slots, src.num_ciphertexts, target.num_ciphertexts, oc, os_, ic, is_)
        steps.update(plan.rotation_steps())
    elif op == "relayout":
        src, dst = lays[0], lays[1]
        if src is None and shapes:
            src = FlatLayout(shapes[0], slots)
        if src is None or dst is None:
            raise ValueError("relayout needs layouts=[source, target]")
        ic, is_ = src.positions()
        oc, os_ = dst.positions()
        plan = _entry_plan(slots, src.num_ciphertexts, dst.num_ciphertexts, oc, os_, ic, is_)
        steps.update(plan.rotation_steps())
    else:
        raise ValueError(f"unknown op {op!r}: cpmm, pcmm, ccmm, matmul, sum, broadcast, relayout")
    return sorted({int(s) % slots for s in steps if int(s) % slots})


__all__ = [
    "Layout", "MatmulCost", "PlainMatrix", "PreparedMatrix", "align", "prepare", "broadcast_to", "clear_cache", "encrypt_matrix", "last_cost",
    "layout_of", "mask_padding", "materialize_transpose", "matmul", "relayout", "rotation_steps_for",
    "set_key_policy", "set_plaintext_budget", "suggest_layout", "tensor_sum", "to_matrix", "transpose",
]
