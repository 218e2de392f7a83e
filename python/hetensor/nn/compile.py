"""Calibrate, compile, simulate, profile: what a model does before and around its forwards.

- ``calibrate(model, inputs)``: one plain pass with the exact functions that
  records the range of every non-linearity's input and every bootstrap site;
  the approximations are then fitted on those ranges (with the margin).
- ``compile(model, ctx, example)``: plans the forward of the example's shape
  without data (:mod:`hetensor.nn.plan`: levels, bootstraps, every rotation
  key under each key policy), chooses the key policy by the memory of its new
  keys against a budget and the bootstrap placement over the whole forward,
  reports the key memory (logger ``hetensor``) and only then makes the keys;
  then one encrypted forward of the example encodes every weight for ``ctx``.
  Later forwards of that shape need nothing more: they never raise
  ``MissingKeyError``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .fits import DEFAULT_MAX_DEPTH
from .plan import choose_policy, input_shape, plan_forward, search_placement
from .run import DEFAULT_MARGIN, run_model

log = logging.getLogger("hetensor")


def _inputs(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def calibrate(model: Any, inputs: Any, *, mask: Any = None, margin: float = DEFAULT_MARGIN,
              max_depth: int = DEFAULT_MAX_DEPTH, batch_size: int = 256, seq_len: Optional[int] = None) -> Any:
    """Record the ranges on ``inputs`` and fit every approximation with at most
    ``max_depth`` levels per polynomial (the fresh level of the context minus one)."""
    if int(max_depth) < 1:
        raise ValueError("max_depth must be >= 1")
    arr = _inputs(inputs)
    m = None if mask is None else _inputs(mask)
    for mod in model.modules():
        if hasattr(mod, "max_depth"):
            mod.max_depth = int(max_depth)
        if hasattr(mod, "margin") and mod.margin != 0.0:
            mod.margin = float(margin)
        keep = {k: v for k, v in mod.ranges.items() if getattr(mod, "margin", None) == 0.0 and k == "input"}
        mod.ranges.clear()
        mod.ranges.update(keep)
    for i in range(0, arr.shape[0], batch_size):
        run_model(model, arr[i:i + batch_size], mask=None if m is None else m[i:i + batch_size],
                  seq_len=seq_len, calibrating=True)
    return model


@dataclass
class CompileReport:
    """What ``compile`` found: bootstraps (module, site, level before), levels, keys, time."""

    context: str
    batch: int
    seq_len: int
    bootstraps: List[Dict[str, Any]] = field(default_factory=list)
    circuits: int = 0
    input_level: int = 0
    output_level: int = 0
    rotation_keys: int = 0
    new_rotation_keys: int = 0
    seconds: float = 0.0
    #: the key policy the forward uses, and the bytes of the keys compile made for it
    key_policy: str = ""
    new_key_bytes: int = 0
    #: per key policy: (key steps, new keys, bytes of the new keys), as planned before any key was made
    key_options: Dict[str, Any] = field(default_factory=dict)
    #: keys the traced forward needed beyond the plan (0 unless the planner missed one)
    unplanned_keys: int = 0
    #: bootstraps of the just-in-time placement, before the placement search
    greedy_circuits: int = 0
    #: the plan the forward follows
    plan: Any = field(default=None, repr=False)
    #: the traced forward's output (a CipherTensor): the example's result
    output: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        where: Dict[str, int] = {}
        for b in self.bootstraps:
            key = f"{b['module']}:{b['site']}"
            where[key] = where.get(key, 0) + 1
        sites = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in where.items()) or "none"
        opts = "; ".join(f"{p}: {o['keys']} keys, {o['new_bytes'] / 2**20:.0f} MiB new" for p, o in self.key_options.items())
        return (f"compiled for {self.context}, batch {self.batch} x {self.seq_len} tokens: "
                f"{len(self.bootstraps)} tensors bootstrapped in {self.circuits} bootstraps "
                f"(just in time: {self.greedy_circuits}) ({sites}); level {self.input_level} -> {self.output_level}; "
                f"key policy {self.key_policy} ({opts}): {self.rotation_keys} rotation keys "
                f"({self.new_rotation_keys} made now, {self.new_key_bytes / 2**20:.0f} MiB); {self.seconds:.1f} s")


KEY_POLICY_CHOICES = ("auto", "exact", "few", "power-of-two")
PLACEMENTS = ("search", "just-in-time")


def compile_model(model: Any, ctx: Any, example: Any, *, mask: Any = None, seq_len: Optional[int] = None,
                  encrypt_adapters: bool = False, progress: bool = False, key_policy: str = "auto",
                  key_budget: Optional[int] = None, placement: str = "search",
                  max_trials: Optional[int] = None) -> CompileReport:
    """Plan, make the keys, then trace one encrypted forward of ``example`` (see the module doc)."""
    from .tokens import encrypt_tokens

    if key_policy not in KEY_POLICY_CHOICES:
        raise ValueError(f"key_policy must be one of {', '.join(KEY_POLICY_CHOICES)}, not {key_policy!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    if key_budget is not None and int(key_budget) < 0:
        raise ValueError(f"key_budget is a number of bytes >= 0, not {key_budget!r}")

    depth = max([getattr(m, "max_depth", 0) for m in model.modules()] + [0])
    if ctx.can_bootstrap and depth > ctx.usable_levels - 1:
        raise ValueError(f"the model's polynomials take up to {depth} levels but {ctx.name} has {ctx.usable_levels} "
                         f"between bootstraps (ctx.usable_levels; one is kept to scale into its range): calibrate "
                         f"with max_depth={ctx.usable_levels - 1}")
    if encrypt_adapters:
        for m in model.modules():
            if hasattr(m, "encrypt_adapters"):  # LoRALinear (no import: linear -> module -> compile)
                m.encrypt_adapters(ctx)
    arr = _inputs(example)
    t0 = time.perf_counter()
    shape = input_shape(arr, seq_len)
    object.__setattr__(model, "_force", ())
    if key_policy == "auto":
        plan, plans = choose_policy(model, ctx, shape, mask=mask, budget=key_budget)
    else:
        plan = plan_forward(model, ctx, shape, mask=mask, policy=key_policy)
        plans = {key_policy: plan}
    greedy = plan.circuits
    if placement == "search" and ctx.can_bootstrap:
        plan = search_placement(model, ctx, shape, plan, mask=mask, max_trials=max_trials)
    options = {p: dict(keys=len(pl.keys), new=len(pl.new_keys), new_bytes=pl.new_key_bytes) for p, pl in plans.items()}
    log.info("hetensor: compile %s: key policy %s: %d new rotation keys, %.1f MiB (options: %s)", type(model).__name__,
             plan.key_policy, len(plan.new_keys), plan.new_key_bytes / 2**20,
             ", ".join(f"{p} {o['new_bytes'] / 2**20:.0f} MiB" for p, o in options.items()))
    if progress:
        print(f"compile: {plan}; making {len(plan.new_keys)} rotation keys ({plan.new_key_bytes / 2**20:.0f} MiB)",
              flush=True)
    ctx.key_policy = plan.key_policy
    if plan.new_keys:
        ctx.generate_rotation_keys(plan.new_keys)
    object.__setattr__(model, "_force", plan.force)
    x, seq_len = encrypt_tokens(ctx, arr, seq_len=seq_len)
    keys0 = len(ctx.rotation_steps)
    # make_keys only as a safety net: a key the plan missed is made, counted and logged
    out = run_model(model, x, seq_len=seq_len, mask=mask, auto_keys=True, progress=progress)
    run = model.last_run
    unplanned = len(ctx.rotation_steps) - keys0
    if unplanned:
        log.warning("hetensor: compile: the plan missed %d rotation key(s); they were made during the trace", unplanned)
    object.__setattr__(model, "seq_len", getattr(model, "seq_len", None) or seq_len)
    object.__setattr__(model, "_leaf_calls", sum(1 for e in run.profile if e["module"] and _is_leaf(model, e["module"])))
    rep = CompileReport(ctx.name, run.batch, run.seq_len, list(run.bootstraps), run.circuits, x.level,
                        int(run.profile[0]["level_out"]), len(ctx.rotation_steps), len(plan.new_keys) + unplanned,
                        time.perf_counter() - t0, output=out, key_policy=plan.key_policy,
                        new_key_bytes=plan.new_key_bytes, key_options=options, unplanned_keys=unplanned,
                        greedy_circuits=greedy, plan=plan)
    object.__setattr__(model, "plan", rep)
    return rep


def _is_leaf(model: Any, name: str) -> bool:
    mods = dict(model.named_modules())
    m = mods.get(name)
    return m is not None and not m._modules


def profile_table(model: Any) -> str:
    """Per-module seconds, levels and bootstraps of the last forward."""
    run = getattr(model, "last_run", None)
    if run is None:
        raise ValueError("run the model once before asking for its profile")
    lines = [f"{run.mode} forward, batch {run.batch} x {run.seq_len} tokens, {len(run.bootstraps)} tensors "
             f"bootstrapped in {run.circuits} bootstraps",
             f"{'module':<34} {'kind':<24} {'seconds':>9} {'levels':>9} {'boots':>5}"]
    for e in run.profile:
        name = ("  " * (e["depth"] - 1)) + (e["module"] or "(model)")
        lv = f"{_lv(e['level_in'])}->{_lv(e['level_out'])}"
        lines.append(f"{name:<34} {e['kind']:<24} {e['seconds']:>9.3f} {lv:>9} {e['bootstraps']:>5}")
    return "\n".join(lines)


def _lv(v: int) -> str:
    return "-" if v >= 1 << 29 else str(v)
