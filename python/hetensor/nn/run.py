"""One forward call: its mode (plain / simulate / encrypted), batch structure,
level management (bootstraps) and per-module profile.

Batching: a batch of B sequences of T tokens is one (B*T, d) token matrix, so
many inputs share the slots of each ciphertext. Token-wise layers (linear,
LayerNorm, activations) need nothing more; attention scores each token
against the T tokens of its own sequence only (rolled copies of the keys, see
hetensor.nn.attention; the masks come from ``offset_mask``; forward and
backward), or, for one sequence or ``per_sequence = False``, keeps the
(B*T, B*T) score matrix with a block-diagonal 0/1 mask (``attention_mask``);
pooling is a plaintext (B, B*T) averaging matrix.

Bootstraps are placed as the forward goes (``Run.ready``): before an operation
that needs ``need`` levels, a tensor with fewer left is scaled into the
bootstrapping range (by the power of two above the range calibration saw at
that site), refreshed and scaled back (an integer: no level). The reserve kept
below every operation is that scaling's level plus the bootstrap's input level
(``ctx.bootstrap_contract.input_level``: 3 in the default SlotToCoeff-first
order, whose SlotToCoeff runs on the input's last 3 levels; 0 in the classic one). The placement is deterministic for an input
shape, so ``Module.compile`` records it once (``model.plan``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .tensors import CipherArray, PlainArray, SimTensor, UNLIMITED

#: Margin on the calibrated ranges: intervals and bootstrap scalings cover this much more.
DEFAULT_MARGIN = 0.25


def _is_cipher(x: Any) -> bool:
    from ..tensor import CipherTensor

    return isinstance(x, CipherTensor)


class Run:
    """State of one forward: mode, context, batch, calibration, bootstraps, profile."""

    def __init__(self, root: Any, mode: str, *, ctx: Any = None, batch: int, seq_len: int,
                 key_mask: Optional[np.ndarray] = None, calibrating: bool = False, auto_keys: bool = False,
                 progress: Any = None, margin: float = DEFAULT_MARGIN, force: Any = ()) -> None:
        self.root, self.mode, self.ctx = root, mode, ctx
        self.batch, self.seq_len = int(batch), int(seq_len)
        self.n_tokens = self.batch * self.seq_len
        self.key_mask = None if key_mask is None else np.asarray(key_mask, dtype=np.float64).reshape(batch, seq_len)
        self.calibrating = calibrating
        self.auto_keys = auto_keys
        self.margin = margin
        self.tape: Any = None  # hetensor.nn.autograd.Tape while a training forward records (model.train())
        self.bootstraps: List[Dict[str, Any]] = []  # one entry per refreshed tensor
        self.circuits = 0  # bootstrap circuits run (a complex-packed one refreshes two tensors)
        self.profile: List[Dict[str, Any]] = []
        # early refreshes chosen by the placement search: (module, site, occurrence)
        self.force = frozenset(tuple(f) for f in force)
        self._occ: Dict[Any, int] = {}
        #: every ready() check: dict(module, site, occ, level, cts, refreshed) (the search's candidates)
        self.sites: List[Dict[str, Any]] = []
        self.progress = progress
        self._names = {id(m): (n or type(m).__name__) for n, m in root.named_modules()}
        self._consts: Dict[Any, np.ndarray] = {}
        self._depth = 0
        can_boot = mode == "plain" or (mode == "simulate" and ctx is not None and ctx.can_bootstrap) or \
            (mode in ("encrypted", "plan") and ctx.can_bootstrap)
        self.can_bootstrap = can_boot
        self.reserve = 1 + boot_input_level(ctx) if mode != "plain" and can_boot else 0

    # -- batch structure -------------------------------------------------------------
    def keys_real(self) -> np.ndarray:
        return np.ones((self.batch, self.seq_len)) if self.key_mask is None else self.key_mask

    def attention_mask(self) -> np.ndarray:
        """(n, n) 0/1: token i may attend to token j (same sequence, j not padding)."""
        if "attn" not in self._consts:
            seq = np.repeat(np.arange(self.batch), self.seq_len)
            same = (seq[:, None] == seq[None, :]).astype(np.float64)
            self._consts["attn"] = same * self.keys_real().reshape(1, -1)
        return self._consts["attn"]

    def offset_mask(self) -> np.ndarray:
        """(n, seq_len) 0/1: column o says whether token i's o-th neighbour in its own
        sequence (position (t + o) mod seq_len) is a real key (per-sequence attention)."""
        if "offsets" not in self._consts:
            t = np.arange(self.seq_len)
            real = self.keys_real()  # (batch, seq_len)
            shifted = real[:, (t[:, None] + t[None, :]) % self.seq_len]  # (batch, t, o)
            self._consts["offsets"] = shifted.reshape(self.n_tokens, self.seq_len)
        return self._consts["offsets"]

    def pool_matrix(self) -> np.ndarray:
        """(batch, n): the mean over the real tokens of each sequence."""
        if "pool" not in self._consts:
            real = self.keys_real()
            w = real / np.maximum(real.sum(1, keepdims=True), 1.0)
            p = np.zeros((self.batch, self.n_tokens))
            for b in range(self.batch):
                p[b, b * self.seq_len:(b + 1) * self.seq_len] = w[b]
            self._consts["pool"] = p
        return self._consts["pool"]

    # -- module calls -------------------------------------------------------------------
    def name_of(self, module: Any) -> str:
        return self._names.get(id(module), type(module).__name__)

    def call(self, module: Any, x: Any) -> Any:
        t0, nb0 = time.perf_counter(), len(self.bootstraps)
        self._depth += 1
        entry = dict(module=self.name_of(module), kind=type(module).__name__, depth=self._depth, level_in=_level(x))
        self.profile.append(entry)  # in call order: parents before their children
        if self.tape is not None:
            self.tape.enter(module, x)
        try:
            y = module.forward(x, self)
        finally:
            self._depth -= 1
        if self.tape is not None:
            self.tape.exit(module, y)
        entry.update(seconds=time.perf_counter() - t0, level_out=_level(y), bootstraps=len(self.bootstraps) - nb0)
        if self.progress is not None and not module._modules:
            self.progress.update(1)
        return y

    def save(self, module: Any, group: Any, **tensors: Any) -> None:
        """Keep tensors that ``module``'s backward needs (only while a training forward records)."""
        if self.tape is not None:
            self.tape.save(module, group, tensors)

    # -- weights ---------------------------------------------------------------------
    def matrix(self, module: Any, key: Any, build: Callable[[], np.ndarray]) -> Any:
        """A plaintext weight matrix as the mode wants it: numpy (plain, simulate)
        or a pre-encoded :class:`hetensor.PlainMatrix` (encrypted), cached on the
        module until its weights change."""
        if self.mode not in ("encrypted", "plan"):
            return build()
        from ..linalg import PlainMatrix

        cache = module.__dict__.setdefault("_encoded", {})
        ck = (id(self.ctx), key)
        if ck not in cache:
            cache[ck] = PlainMatrix(self.ctx, build(), name=f"{self.name_of(module)}.{key}")
        return cache[ck]

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` (one place to hook products)."""
        return a @ b

    def levels_of_matmul(self, a: Any, b: Any) -> int:
        """Levels that ``a @ b`` consumes from ``a``'s level (its route, planned on ghosts
        in encrypted and plan modes; 2, an encrypted product's usual cost, otherwise)."""
        if self.mode not in ("encrypted", "plan"):
            return 2
        from ..linalg import runmode as rm
        from ..linalg.products import matmul

        ga = a.g if hasattr(a, "g") else rm.GhostTensor.like(a.t)
        gb = b.g if hasattr(b, "g") else rm._ghost_arg(getattr(b, "t", b))
        out, _ = rm.collect(matmul.unplanned, ga, gb)
        return max(1, int(ga.level) - int(out.level))

    def add(self, a: Any, b: Any, module: Any, site: str) -> Any:
        """``a + b`` of two tensors: each first gets a level for a possible change of
        layout (the operands of an encrypted sum may sit in different packings)."""
        a, b = self.ready_many([(a, 1, site + ".a"), (b, 1, site + ".b")], module)
        return a + b

    def mul(self, a: Any, b: Any, module: Any, site: str) -> Any:
        """``a * b`` of two tensors: a level for the product, one for a change of layout."""
        a, b = self.ready_many([(a, 2, site + ".a"), (b, 2, site + ".b")], module)
        return a * b

    def ready_many(self, items: List[tuple], module: Any) -> List[Any]:
        """:meth:`ready` for several tensors ``(x, need, site[, bound])``; those that
        must be refreshed share complex-packed bootstraps (two real ciphertexts per
        bootstrap, ``Context.bootstrap_many``) in encrypted mode."""
        todo, out = [], []
        for it in items:
            x, need, site = it[0], it[1], it[2]
            bound = it[3] if len(it) > 3 else None
            if bound is None:
                self.record(module, site, x)
            if self._enough(x, need, module, site):
                out.append(x)
                continue
            if not self.can_bootstrap:
                return [self.ready(it[0], it[1], module, it[2], it[3] if len(it) > 3 else None) for it in items]
            todo.append((len(out), x, site, bound))
            out.append(None)
        if len(todo) == 1 or (todo and self.mode not in ("encrypted", "plan")):
            for i, x, site, bound in todo:
                out[i] = self._refresh(x, module, site, bound)
            return out
        if todo:
            scales = [self.boot_scale(module, site, x, bound) for _, x, site, bound in todo]
            down = [x.assume_bound(s) * (1.0 / s) if s > 1.0 else x.assume_bound(1.0)
                    for (_, x, _, _), s in zip(todo, scales)]
            fresh = type(down[0]).bootstrap_many(down)
            for (i, x, site, _), s, y in zip(todo, scales, fresh):
                out[i] = y * s if s > 1.0 else y
                self.bootstraps.append(dict(module=self.name_of(module), site=site, level=_level(x), scale=s,
                                            paired=True, cts=_cts(x)))
            self.circuits += (sum(_cts(x) for _, x, _, _ in todo) + 1) // 2
        return out

    # -- levels ------------------------------------------------------------------------
    def record(self, module: Any, site: str, x: Any) -> None:
        """Calibration: widen the range seen at ``site`` of ``module``."""
        if not self.calibrating:
            return
        v = x.numpy() if isinstance(x, PlainArray) else np.asarray(x)
        lo, hi = float(np.min(v)), float(np.max(v))
        old = module.ranges.get(site)
        module.ranges[site] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]

    def ready(self, x: Any, need: int, module: Any, site: str, bound: Optional[float] = None) -> Any:
        """``x`` with at least ``need`` levels left (plus the reserve), bootstrapping if needed.

        The bootstrap scaling comes from the range calibration recorded at ``site``,
        or from ``bound`` (a known bound on |x|) when given."""
        if bound is None:
            self.record(module, site, x)
        if self._enough(x, need, module, site):
            return x
        if not self.can_bootstrap:
            raise ValueError(
                f"{self.name_of(module)} needs {need} more levels at '{site}' but the tensor is at level "
                f"{_level(x)} and the context cannot bootstrap; use a bootstrapping preset "
                f"(Context.from_preset('n16-boot', bootstrap=True)) or a longer chain")
        return self._refresh(x, module, site, bound)

    def _enough(self, x: Any, need: int, module: Any, site: str) -> bool:
        """Whether ``x`` has ``need`` levels (plus the reserve) and no early refresh is forced here."""
        key = (self.name_of(module), site)
        occ = self._occ.get(key, 0)
        self._occ[key] = occ + 1
        lv = _level(x)
        ok = lv >= need + self.reserve and (key + (occ,) not in self.force or not self.can_bootstrap)
        self.sites.append(dict(module=key[0], site=site, occ=occ, level=lv, cts=_cts(x), refreshed=not ok))
        return ok

    def boot_scale(self, module: Any, site: str, x: Any, bound: Optional[float] = None) -> float:
        """Power of two that brings the values at ``site`` into [-1, 1] (with the margin)."""
        r = module.ranges.get(site) if bound is None else [-bound, bound]
        if r is None:
            raise ValueError(f"{self.name_of(module)} has no calibrated range at '{site}': calibrate the model "
                             f"(model.calibrate(inputs) or from_torch(..., calibration=inputs)) before running it "
                             f"on a bootstrapping context")
        m = max(abs(r[0]), abs(r[1])) * (1.0 + (self.margin if bound is None else 0.0))
        return float(2.0 ** math.ceil(math.log2(m))) if m > 1.0 else 1.0

    def _refresh(self, x: Any, module: Any, site: str, bound: Optional[float] = None) -> Any:
        s = self.boot_scale(module, site, x, bound)
        lv = _level(x)
        y = x.assume_bound(s) * (1.0 / s) if s > 1.0 else x.assume_bound(1.0)
        cts = _cts(x)
        if cts > 1 and self.mode in ("encrypted", "plan"):  # its ciphertexts pair up: half the circuits
            y = type(y).bootstrap_many([y])[0]
            self.circuits += (cts + 1) // 2
        else:
            y = y.bootstrap()
            self.circuits += cts
        if s > 1.0:
            y = y * s
        self.bootstraps.append(dict(module=self.name_of(module), site=site, level=lv, scale=s, cts=cts))
        return y


def boot_input_level(ctx: Any) -> int:
    """The lowest level ``ctx`` bootstraps from (0 without a context or bootstrapping)."""
    c = getattr(ctx, "bootstrap_contract", None)
    return 0 if c is None else int(c.input_level)


def _cts(x: Any) -> int:
    """Ciphertexts a tensor takes (1 for the numpy-backed ones)."""
    t = getattr(x, "t", None)
    if t is not None:
        return int(t.num_ciphertexts)
    g = getattr(x, "g", None)  # a GhostArray (plan)
    return int(g._ct.batch) if g is not None else 1


def _level(x: Any) -> int:
    return int(getattr(x, "level", UNLIMITED))


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


#: sequences per plain-mode pass: the batch's attention matrices are (tokens x
#: tokens), so a test split of 450 sequences at once would take ~1 GB; sequences
#: are independent, so plain mode runs them in chunks and concatenates.
PLAIN_CHUNK = 64


def _plain_in_chunks(model: Any, arr: np.ndarray, batch: int, seq_len: int, three_d: bool, mask: Any,
                     progress: bool) -> np.ndarray:
    key_mask = None if mask is None else np.asarray(mask, dtype=np.float64).reshape(batch, seq_len)
    outs = []
    for i in range(0, batch, PLAIN_CHUNK):
        j = min(i + PLAIN_CHUNK, batch)
        part = arr[i * seq_len:j * seq_len]
        if three_d:
            part = part.reshape(j - i, seq_len, -1)
        outs.append(run_model(model, part, seq_len=seq_len, mask=None if key_mask is None else key_mask[i:j],
                              progress=progress, mode="plain"))
    return np.concatenate(outs, axis=0)


def run_model(model: Any, x: Any, *, seq_len: Optional[int] = None, mask: Any = None, progress: bool = False,
              mode: Optional[str] = None, ctx: Any = None, calibrating: bool = False, auto_keys: bool = False,
              rng: Optional[np.random.Generator] = None) -> Any:
    """Run ``model`` on ``x`` (see :meth:`hetensor.nn.Module.__call__`)."""
    from .noise import noise_model

    enc = _is_cipher(x)
    if enc:
        if mode not in (None, "encrypted"):
            raise ValueError("an encrypted input runs in encrypted mode")
        mode, ctx = "encrypted", x.context
        if len(x.shape) != 2:
            raise ValueError(f"an encrypted input is a (batch * seq_len, features) token matrix, not {x.shape}; "
                             f"encrypt with hetensor.nn.encrypt_tokens(ctx, x)")
        n, three_d = x.shape[0], False
        if seq_len is None:
            seq_len = getattr(model, "seq_len", None) or 1
        if n % seq_len:
            raise ValueError(f"{n} tokens do not split into sequences of {seq_len}")
        batch = n // seq_len
        value = CipherArray(x, make_keys=auto_keys)
    else:
        arr = _to_numpy(x)
        three_d = arr.ndim == 3
        if three_d:
            batch, seq_len_in, d = arr.shape
            if seq_len is not None and seq_len != seq_len_in:
                raise ValueError(f"seq_len={seq_len} but the input has {seq_len_in} tokens per sequence")
            seq_len = seq_len_in
            arr = arr.reshape(batch * seq_len, d)
        elif arr.ndim == 2:
            seq_len = seq_len or 1
            if arr.shape[0] % seq_len:
                raise ValueError(f"{arr.shape[0]} rows do not split into sequences of {seq_len}")
            batch = arr.shape[0] // seq_len
        else:
            raise ValueError(f"the input must be (batch, seq_len, features) or (tokens, features), not {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("the input holds NaN or Inf")
        mode = mode or "plain"
        if mode == "plain" and not calibrating and batch > PLAIN_CHUNK and not model.training:
            return _plain_in_chunks(model, arr, batch, seq_len, three_d, mask, progress)
        if mode == "simulate":
            nm = noise_model(model, ctx)
            gen = rng if rng is not None else np.random.default_rng()
            value = SimTensor(arr + gen.normal(0.0, nm.sigma("fresh"), arr.shape), ctx.fresh_level, nm, gen)
        else:
            value = PlainArray(arr)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=getattr(model, "_leaf_calls", None), desc=f"{mode} forward", unit="layer", leave=False)
    run = Run(model, mode, ctx=ctx, batch=batch, seq_len=seq_len, key_mask=mask, calibrating=calibrating,
              auto_keys=auto_keys, progress=bar, force=() if calibrating else getattr(model, "_force", ()))
    if model.training and not calibrating:
        from .tape import Tape

        run.tape = Tape()
    try:
        y = run.call(model, value)
    finally:
        if bar is not None:
            bar.close()
    object.__setattr__(model, "last_run", run)
    if run.tape is not None:
        run.tape.output = y
    if enc:
        return y.t
    out = y.numpy() if isinstance(y, PlainArray) else np.asarray(y)
    if three_d and out.ndim == 2 and out.shape[0] == batch * seq_len:
        out = out.reshape(batch, seq_len, -1)
    return out
