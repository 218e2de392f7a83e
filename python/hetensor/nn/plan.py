"""Planning a forward without running it: levels, bootstraps and rotation keys.

A plan runs the model's own forward on *ghost* tensors (:class:`GhostArray`:
shape, layout and level of a CipherTensor, no data). Products, transposes and
alignments run the linalg operations' own code on ghosts
(:func:`hetensor.linalg.runmode.collect`), which records the rotation steps
they use; every other operation is its effect on the level (one per
non-integer scalar, plaintext vector or encrypted product, ``depth`` per
polynomial, the fresh level after a bootstrap). Because the bootstrap
placement depends on levels only, the plan's bootstraps, levels and keys are
those of the encrypted forward of that shape: ``compile`` makes exactly these
keys, so the forward needs no other.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from ..linalg import runmode as rm
from ..linalg.keypolicy import POLICIES, key_policy, keys_for_steps, set_key_policy

#: Default memory for new rotation keys when compile chooses the key policy
#: (N = 2^16 keys are ~170 MB each: 4 GiB holds about 24 of them).
DEFAULT_KEY_BUDGET = 4 << 30


class Recorder:
    """What a plan collects: rotation steps, and every operation with its operands
    (``ops``: dicts with kind, module, level, cts and the ghost operands) so that
    a bench can time each kind at its real shapes and levels."""

    def __init__(self) -> None:
        self.steps: Set[int] = set()
        self.ops: List[Dict[str, Any]] = []
        self.where: List[str] = [""]

    def op(self, kind: str, level: int, cts: int, *args: Any, **extra: Any) -> None:
        self.ops.append(dict(kind=kind, module=self.where[-1], level=int(level), cts=int(cts), args=args, **extra))


class GhostArray:
    """A CipherTensor's shape, layout and level, with the tensor interface of the
    layers (:mod:`hetensor.nn.tensors`); it records the rotation steps it uses."""

    __array_ufunc__ = None
    __slots__ = ("g", "rec")

    def __init__(self, g: Any, rec: Recorder) -> None:
        self.g = g
        self.rec = rec

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.g.shape)

    @property
    def level(self) -> int:
        return int(self.g.level)

    @property
    def ctx(self) -> Any:
        return self.g.context

    def __repr__(self) -> str:
        return f"GhostArray(shape={self.shape}, level={self.level})"

    def _with_level(self, g: Any, level: int, op: str) -> "GhostArray":
        if level < 0:
            raise ValueError(f"cannot {op}: the tensor has no level left (plan); bootstrap it first")
        ct = rm.GhostCiphertext(level, g._ct.batch, self.ctx.scale_at(level))
        return GhostArray(rm.GhostTensor._wrap(g._ctx, ct, g._shape, g._complex, g._torch, g._layout), self.rec)

    def _run(self, fn: Any, *args: Any, **kw: Any) -> Any:
        out, steps = rm.collect(fn, *args, **kw)
        self.rec.steps.update(steps)
        return out

    def _pair(self, other: "GhostArray", op: str) -> Tuple[Any, Any]:
        from ..linalg.moves import align

        if self.g._layout is None and other.g._layout is None:
            return self.g, other.g
        a, b = self._run(align.unplanned, self.g, other.g, op)
        for src, dst in ((self.g, a), (other.g, b)):  # the alignment's moves cost rotations: record them
            ls, ld = src._layout, dst._layout
            if ld is not None and (ls is None or tuple(src.shape) != tuple(dst.shape) or not ls.same_slots(ld)):
                kind = "relayout" if tuple(src.shape) == tuple(dst.shape) else "broadcast"
                self.rec.op(kind, src.level, src._ct.batch, src, dst)
        return a, b

    # -- element-wise ------------------------------------------------------------
    def _add(self, o: Any) -> "GhostArray":
        if isinstance(o, GhostArray):
            a, b = self._pair(o, "add")
            self.rec.op("add", min(a.level, b.level), a._ct.batch, a, b)
            return self._with_level(a, min(a.level, b.level), "add")
        self.rec.op("add_plain", self.level, self.g._ct.batch, self.g)
        return self  # a scalar or plaintext array: no level

    __add__ = __radd__ = __sub__ = __rsub__ = _add

    def __neg__(self) -> "GhostArray":
        return self

    def __mul__(self, o: Any) -> "GhostArray":
        if isinstance(o, GhostArray):
            a, b = self._pair(o, "multiply")
            self.rec.op("mul", min(a.level, b.level), a._ct.batch, a, b)
            return self._with_level(a, min(a.level, b.level) - 1, "multiply")
        if isinstance(o, numbers.Number) and float(o) == round(float(o)):
            return self  # integers cost no level
        self.rec.op("mul_plain", self.level, self.g._ct.batch, self.g)
        return self._with_level(self.g, self.level - 1, "multiply")

    __rmul__ = __mul__

    # -- products ---------------------------------------------------------------
    def __matmul__(self, o: Any) -> "GhostArray":
        from ..linalg.products import matmul

        other = o.g if isinstance(o, GhostArray) else rm._ghost_arg(o)  # encrypted adapters: ghosts too
        kind = "ccmm" if rm.is_tensor(other) or other is not o else "cpmm"
        self.rec.op(kind, self.level, self.g._ct.batch, self.g, other if kind == "ccmm" else o)
        return GhostArray(self._run(matmul.unplanned, self.g, other), self.rec)

    def __rmatmul__(self, o: Any) -> "GhostArray":
        from ..linalg.products import matmul

        self.rec.op("pcmm", self.level, self.g._ct.batch, o, self.g)
        return GhostArray(self._run(matmul.unplanned, rm._ghost_arg(o), self.g), self.rec)

    @property
    def T(self) -> "GhostArray":
        from ..linalg.moves import transpose

        return GhostArray(self._run(transpose.unplanned, self.g), self.rec)

    def roll_rows(self, shift: int, block: int) -> "GhostArray":
        from ..linalg.moves import roll_rows

        self.rec.op("roll", self.level, self.g._ct.batch, self.g, int(shift), int(block))
        return GhostArray(self._run(roll_rows.unplanned, self.g, shift, block), self.rec)

    # -- levels -----------------------------------------------------------------
    def polyval(self, poly: Any) -> "GhostArray":
        self.rec.op("poly", self.level, self.g._ct.batch, self.g, poly)
        return self._with_level(self.g, self.level - int(poly.depth), "evaluate a polynomial")

    def _boot_output(self) -> int:
        """The bootstrap contract: refused below its input level (as the encrypted
        bootstrap), back at the fresh level."""
        c = self.ctx.bootstrap_contract
        if c is not None and self.level < c.input_level:
            raise ValueError(f"cannot bootstrap (plan): the tensor is at level {self.level}, below the "
                             f"bootstrap's input level {c.input_level} ({c.order} order)")
        return int(self.ctx.fresh_level)

    def bootstrap(self) -> "GhostArray":
        self.rec.op("bootstrap", self.level, self.g._ct.batch, self.g)
        return self._with_level(self.g, self._boot_output(), "bootstrap")

    @staticmethod
    def bootstrap_many(items: List["GhostArray"]) -> List["GhostArray"]:
        """Complex-packed: two real ciphertexts per bootstrap (as ``Context.bootstrap_many``)."""
        rec = items[0].rec
        cts = sum(int(x.g._ct.batch) for x in items)
        rec.op("bootstrap", min(x.level for x in items), (cts + 1) // 2, items[0].g, paired=len(items))
        return [x._with_level(x.g, x._boot_output(), "bootstrap") for x in items]

    def assume_bound(self, bound: float) -> "GhostArray":
        return self


@dataclass
class ForwardPlan:
    """A planned forward: bootstraps, levels and rotation keys for one input shape."""

    context: str
    key_policy: str
    batch: int
    seq_len: int
    #: rotation steps the forward's operations use (before the key policy maps them to keys)
    steps: List[int] = field(default_factory=list)
    #: the key steps under ``key_policy``, and those the context does not hold yet
    keys: List[int] = field(default_factory=list)
    new_keys: List[int] = field(default_factory=list)
    new_key_bytes: int = 0
    bootstraps: List[Dict[str, Any]] = field(default_factory=list)
    circuits: int = 0
    input_level: int = 0
    output_level: int = 0
    #: forced early refreshes (see :func:`hetensor.nn.run.Run`), if the placement search found any
    force: Tuple[Tuple[str, str, int], ...] = ()
    #: every level check of the forward (module, site, occ, level, cts, refreshed)
    sites: List[Dict[str, Any]] = field(default_factory=list, repr=False)
    #: every operation of the forward (:class:`Recorder`), for benches
    ops: List[Dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def cost(self) -> Tuple[int, int, int]:
        """What the placement search minimises: bootstraps, then refreshed ciphertexts, then new keys."""
        return (self.circuits, sum(int(b.get("cts", 1)) for b in self.bootstraps), len(self.new_keys))

    def __str__(self) -> str:
        return (f"plan for {self.context}, batch {self.batch} x {self.seq_len} tokens, key policy {self.key_policy}: "
                f"{len(self.keys)} rotation keys ({len(self.new_keys)} new, {self.new_key_bytes / 2**20:.0f} MiB), "
                f"{self.circuits} bootstraps ({len(self.bootstraps)} tensors), level {self.input_level} -> "
                f"{self.output_level}")


def trace_modules(run: Any, rec: Recorder) -> None:
    """Make ``run`` attribute each recorded operation to the innermost module running it."""
    call = run.call

    def traced(module: Any, v: Any) -> Any:
        rec.where.append(run.name_of(module))
        try:
            return call(module, v)
        finally:
            rec.where.pop()

    run.call = traced


def _ghost_input(ctx: Any, n_tokens: int, d: int, rec: Recorder) -> GhostArray:
    from ..linalg.keys import ghost

    return GhostArray(ghost(ctx, (n_tokens, d), "matrix"), rec)


def plan_forward(model: Any, ctx: Any, shape: Tuple[int, int, int], *, mask: Any = None,
                 policy: Optional[str] = None, force: Tuple[Tuple[str, str, int], ...] = ()) -> ForwardPlan:
    """Plan the encrypted forward of a (batch, seq_len, features) input on ``ctx``
    under the key ``policy`` (default: the context's), without keys or data."""
    from .run import Run

    batch, seq_len, d = (int(s) for s in shape)
    old = key_policy(ctx)
    pol = old if policy is None else policy
    set_key_policy(ctx, pol)
    try:
        rec = Recorder()
        x = _ghost_input(ctx, batch * seq_len, d, rec)
        run = Run(model, "plan", ctx=ctx, batch=batch, seq_len=seq_len, key_mask=mask, force=force)
        trace_modules(run, rec)
        y = run.call(model, x)
    finally:
        set_key_policy(ctx, old)
    steps = rec.steps
    keys = keys_for_steps(ctx.slots, steps, pol)
    have = set(int(s) for s in ctx.rotation_steps)
    new = [s for s in keys if s not in have]
    return ForwardPlan(ctx.name, pol, batch, seq_len, sorted(steps), keys, new, ctx.key_bytes(new),
                       list(run.bootstraps), run.circuits, x.level, y.level, tuple(force), list(run.sites),
                       rec.ops)


def choose_policy(model: Any, ctx: Any, shape: Tuple[int, int, int], *, mask: Any = None,
                  budget: Optional[int] = None) -> Tuple[ForwardPlan, Dict[str, ForwardPlan]]:
    """Plan under each key policy; choose the first of ``exact``, ``few``,
    ``power-of-two`` (fastest first) whose new keys fit ``budget`` bytes (default
    :data:`DEFAULT_KEY_BUDGET`), else the one with the fewest new key bytes."""
    budget = DEFAULT_KEY_BUDGET if budget is None else int(budget)
    plans = {p: plan_forward(model, ctx, shape, mask=mask, policy=p) for p in POLICIES}
    for p in POLICIES:
        if plans[p].new_key_bytes <= budget:
            return plans[p], plans
    return min(plans.values(), key=lambda pl: pl.new_key_bytes), plans


def input_shape(x: np.ndarray, seq_len: Optional[int]) -> Tuple[int, int, int]:
    """(batch, seq_len, features) of a 3-D input, or of a 2-D token matrix and ``seq_len``."""
    if x.ndim == 3:
        return tuple(int(s) for s in x.shape)  # type: ignore[return-value]
    if x.ndim != 2:
        raise ValueError(f"the example must be (batch, seq_len, features) or (tokens, features), not {x.shape}")
    t = int(seq_len or 1)
    if x.shape[0] % t:
        raise ValueError(f"{x.shape[0]} rows do not split into sequences of {t}")
    return x.shape[0] // t, t, int(x.shape[1])


def search_placement(model: Any, ctx: Any, shape: Tuple[int, int, int], start: ForwardPlan, *, mask: Any = None,
                     max_trials: Optional[int] = None, passes: int = 2) -> ForwardPlan:
    """Bootstrap placement over the whole forward: starting from the just-in-time
    placement (refresh where the levels run out), try refreshing each tensor
    earlier, at every level check where it was not refreshed (a narrower tensor
    before a widening product, or the free half of a complex-packed pair), and
    keep each change that lowers the whole forward's :attr:`ForwardPlan.cost`.
    Passes in forward order until one changes nothing (at most ``passes``, at
    most ``max_trials`` plans in all); each trial is a plan (no data, no keys)."""
    best = start
    fresh = int(ctx.fresh_level)
    left = None if max_trials is None else max(0, int(max_trials))
    for _ in range(passes):
        cands = [(s["module"], s["site"], s["occ"]) for s in best.sites if not s["refreshed"] and s["level"] < fresh]
        improved = False
        for c in cands:
            if c in best.force:
                continue
            if left is not None:
                if left == 0:
                    return best
                left -= 1
            trial = plan_forward(model, ctx, shape, mask=mask, policy=best.key_policy, force=best.force + (c,))
            if trial.cost < best.cost:
                best, improved = trial, True
        if not improved:
            break
    return best
