"""How a linalg operation runs: planned first on ghost operands, then executed.

Every public entry point (products, transposes, sums, relayouts, broadcasts)
is wrapped by :func:`planned`. The wrapper first runs the operation on
*ghost* tensors (shapes, layouts and levels only, no ciphertext data): each
C++ step below is replaced by its effect on the level and batch size, and the
rotation steps it would use are recorded. Because the plan is the operation's
own code, the steps are exactly those the operation uses; the route depends on
shapes, layouts and levels only (never on which keys exist). The keys are then
checked once (:func:`keypolicy.ensure`: all missing steps in one
``MissingKeyError``, or made on the fly with ``auto_keys``), and the operation
runs for real. ``rotation_steps_for`` runs the same plan on ghosts made from
shapes.

The functions below are the only way this package touches ciphertexts.
Operations marked ``one_call`` (the matrix products) do not run them step by
step: the real run records them into a :class:`hetensor._core.LinalgProgram`
(registers instead of ciphertexts, with the levels and batch sizes the plan
predicts) and executes the whole circuit in one C++ call at the end, with no
return to Python between its steps. Host ciphertexts and device-resident ones
(``x.to(device)``) run the same steps, the latter on their backend; the
operands of one product must live in one place.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any, Optional, Sequence

import numpy as np

from .. import _core
from . import keypolicy
from .cache import encoded

_state = threading.local()


def planning() -> bool:
    """True while an operation runs on ghosts to collect its steps."""
    return getattr(_state, "steps", None) is not None


def _nested() -> bool:
    return getattr(_state, "depth", 0) > 0


class GhostCiphertext:
    """Level, scale and batch size of a ciphertext batch, without the data."""

    __slots__ = ("level", "batch", "scale")
    size = 2
    nbytes = 0

    def __init__(self, level: int, batch: int, scale: float = 1.0) -> None:
        self.level, self.batch, self.scale = int(level), int(batch), float(scale)


class GhostTensor:
    """What the linalg code reads of a CipherTensor (context, shape, level, layout), without data."""

    __slots__ = ("_ctx", "_ct", "_shape", "_complex", "_torch", "_layout")

    @classmethod
    def _wrap(cls, ctx, ct, shape, is_complex: bool, torch_out: bool, layout: Any = None) -> "GhostTensor":
        g = cls.__new__(cls)
        g._ctx, g._ct, g._shape = ctx, ct, tuple(int(s) for s in shape)
        g._complex, g._torch, g._layout = bool(is_complex), bool(torch_out), layout
        return g

    @classmethod
    def like(cls, x) -> "GhostTensor":
        ct = x._ct
        return cls._wrap(x._ctx, GhostCiphertext(ct.level, ct.batch, ct.scale), x._shape, x._complex, x._torch,
                         x._layout)

    @property
    def context(self):
        return self._ctx

    @property
    def shape(self):
        return self._shape

    @property
    def level(self) -> int:
        return self._ct.level

    @property
    def is_complex(self) -> bool:
        return self._complex


class Register(GhostCiphertext):
    """A ciphertext batch that a recorded program will compute: its register and predicted level and size."""

    __slots__ = ("reg",)

    def __init__(self, reg: int, level: int, batch: int) -> None:
        super().__init__(level, batch)
        self.reg = int(reg)


class _Recorder:
    """The program of one ``one_call`` operation: its steps, inputs and the cost record of each step."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.program = _core.LinalgProgram()
        self.inputs: list = []  # the input ciphertexts, in register order (kept alive until the run)
        self.index: dict = {}
        self.costs: list = []  # per step: (MatmulCost or None, rotation steps)
        self.where: Optional[str] = None  # "host" or the device of the inputs (one place per program)

    def reg(self, ct) -> int:
        if isinstance(ct, Register):
            return ct.reg
        r = self.index.get(id(ct))
        if r is None:
            where = _where(ct)
            if self.where is None:
                self.where = where
            elif where != self.where:
                raise ValueError(f"the operands of a matrix product live in different places ({self.where} and "
                                 f"{where}); bring them to one device with x.to(device) first")
            r = self.program.add_input()
            self.index[id(ct)] = r
            self.inputs.append(ct)
        return r

    def step(self, reg: int, level: int, batch: int, cost, steps) -> Register:
        self.costs.append((cost, [int(s) for s in steps]))
        return Register(reg, level, batch)

    def run(self, result):
        """Executes the program and puts the computed ciphertexts into the tensors of ``result``."""
        items = result if isinstance(result, tuple) else (result,)
        tensors = [t for t in items if is_tensor(t) and isinstance(t._ct, Register)]
        if not tensors:
            if len(self.program):
                raise RuntimeError("internal: a recorded linalg program has no output")
            return result
        t0 = time.perf_counter()
        outs, counts = self.program.run(self.ctx._engine, self.inputs, [t._ct.reg for t in tensors])
        elapsed = time.perf_counter() - t0
        for t, ct in zip(tensors, outs):
            t._ct = ct
        seen = set()
        for (cost, steps), c in zip(self.costs, counts):
            if cost is None:
                continue
            cost.add(c)
            if steps:
                cost.steps(steps, self.ctx.slots)
            if id(cost) not in seen:
                seen.add(id(cost))
                cost.seconds += elapsed
        return result


def _where(ct) -> str:
    """"host" for a host ciphertext, the device ("cpu", "cuda:0") of a device-resident one."""
    if isinstance(ct, _core.Ciphertext):
        return "host"
    if isinstance(ct, _core.DeviceCiphertext):
        return f"{ct.device} memory"
    raise TypeError(f"internal: a linalg program input is a {type(ct).__name__}, not a ciphertext")


def _recorder() -> Optional[_Recorder]:
    return getattr(_state, "rec", None)


def is_tensor(x) -> bool:
    """A CipherTensor or a ghost of one."""
    return hasattr(x, "_ct") and hasattr(x, "_layout") and hasattr(x, "_ctx")


def _ghost_arg(x):
    if is_tensor(x):
        return GhostTensor.like(x)
    ghost = getattr(x, "_ghost", None)  # PreparedMatrix
    return ghost() if callable(ghost) else x


def _context_of(args) -> Optional[Any]:
    for a in args:
        if is_tensor(a):
            return a._ctx
        c = getattr(a, "context", None)
        if c is not None and hasattr(c, "_engine"):
            return c
    return None


def planned(what: str, one_call: bool = False):
    """Decorator: plan the operation on ghosts, check every key once, then run it
    (``one_call``: record its steps and run them as one C++ program)."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kw):
            if _nested():
                return fn(*args, **kw)
            ctx = _context_of(args)
            if ctx is None:
                return fn(*args, **kw)
            steps = collect(fn, *[_ghost_arg(a) for a in args], **kw)[1]
            keypolicy.ensure(ctx, steps, what)
            _state.depth = 1
            _state.rec = _Recorder(ctx) if one_call else None
            try:
                out = fn(*args, **kw)
                rec = _state.rec
                _state.rec = None
                return rec.run(out) if rec is not None else out
            finally:
                _state.depth = 0
                _state.rec = None

        wrapper.unplanned = fn
        return wrapper

    return deco


def collect(fn, *args, **kw):
    """Run ``fn`` on ghost arguments; returns (its result, the set of rotation steps it uses)."""
    outer_steps, outer_depth = getattr(_state, "steps", None), getattr(_state, "depth", 0)
    outer_rec = getattr(_state, "rec", None)
    _state.steps, _state.depth, _state.rec = set(), 1, None
    try:
        out = fn(*args, **kw)
        return out, _state.steps
    finally:
        _state.steps, _state.depth, _state.rec = outer_steps, outer_depth, outer_rec


def _record(steps: Sequence[int]) -> None:
    _state.steps.update(int(s) for s in steps)


# ---------------------------------------------------------------------------
# the C++ steps (or their effect on ghosts)

def require(ctx, steps) -> None:
    """Steps that the next C++ call will use (recorded while planning; checked by the planner)."""
    if planning():
        _record(steps)


def apply_map(ctx, key, plan, ct, level: int, inner_groups: int, cost, mp=None):
    """One block linear map at ``level`` (one level). ``mp``: an already encoded map."""
    if planning():
        _record(plan.rotation_steps())
        if ct.batch % plan.in_cts:
            raise ValueError("internal: a map's input batch does not match its plan")
        return GhostCiphertext(min(int(level), ct.level) - 1, ct.batch // plan.in_cts * plan.out_cts)
    m = mp if mp is not None else encoded(ctx, key, plan, level)
    rec = _recorder()
    if rec is not None:
        if ct.batch % plan.in_cts:
            raise ValueError("internal: a map's input batch does not match its plan")
        r = rec.program.map(rec.reg(ct), m, int(inner_groups))
        return rec.step(r, min(int(level), ct.level) - 1, ct.batch // plan.in_cts * plan.out_cts, cost,
                        plan.rotation_steps())
    out, counts = _core.linalg_apply_map(ctx._engine, ct, m, int(inner_groups))
    cost.add(counts)
    cost.steps(plan.rotation_steps(), ctx.slots)
    return out


def rotate_sum(ctx, ct, steps: Sequence[int], cost):
    """x += rot(x, s) for each step in order (no level)."""
    steps = [int(s) for s in steps]
    if not steps:
        return ct
    if planning():
        _record(steps)
        return ct
    rec = _recorder()
    if rec is not None:
        return rec.step(rec.program.rotate_sum(rec.reg(ct), steps), ct.level, ct.batch, cost, steps)
    out, counts = _core.linalg_rotate_sum(ctx._engine, ct, steps)
    cost.add(counts)
    cost.steps(steps, ctx.slots)
    return out


def bilinear(ctx, A, B, rounds, outputs: int, chain_a: bool, chain_b: bool, cost):
    """Sums of products of rotated ciphertexts (one level)."""
    steps = _core.linalg_bilinear_steps(int(ctx.slots), rounds, bool(chain_a), bool(chain_b))
    if planning():
        _record(steps)
        return GhostCiphertext(min(A.level, B.level) - 1, outputs)
    rec = _recorder()
    if rec is not None:
        r = rec.program.bilinear(rec.reg(A), rec.reg(B), rounds, int(outputs), bool(chain_a), bool(chain_b))
        return rec.step(r, min(A.level, B.level) - 1, int(outputs), cost, steps)
    ct, counts = _core.linalg_bilinear(ctx._engine, A, B, rounds, int(outputs), bool(chain_a), bool(chain_b))
    cost.add(counts)
    cost.steps(steps, ctx.slots)
    return ct


def gather(ctx, ct, idx):
    idx = [int(i) for i in idx]
    if planning():
        return GhostCiphertext(ct.level, len(idx))
    rec = _recorder()
    if rec is not None:
        return rec.step(rec.program.gather(rec.reg(ct), idx), ct.level, len(idx), None, ())
    return _core.linalg_gather(ctx._engine, ct, idx)


def add(ctx, a, b):
    if planning():
        return GhostCiphertext(min(a.level, b.level), a.batch)
    rec = _recorder()
    if rec is not None:
        return rec.step(rec.program.add(rec.reg(a), rec.reg(b)), min(a.level, b.level), a.batch, None, ())
    return ctx._engine.add(a, b)


def mul_values(ctx, ct, rows):
    """Slot-wise product with plaintext rows (one level)."""
    if planning():
        return GhostCiphertext(ct.level - 1, ct.batch)
    rec = _recorder()
    if rec is not None:
        vals = np.ascontiguousarray(rows, dtype=np.complex128)
        return rec.step(rec.program.mul_values(rec.reg(ct), vals.reshape(vals.shape[0], -1)), ct.level - 1,
                        ct.batch, None, ())
    return ctx._engine.mul_values(ct, rows)
