"""Time each step of one bootstrap (ModRaise, CoeffToSlot levels, EvalMod parts,
SlotToCoeff levels) with timers around the C++ calls of its primitives, the
classic order sequenced here from the plan (the library runs it in one call,
cpp/boot/executor).

    python bench/profile_bootstrap.py --preset n16-boot --threads 1

Then times the public calls: one ``ctx.bootstrap`` and one complex-packed
``ctx.bootstrap_many`` of two real vectors (the time per real vector), then
both again with ``stc_first=True`` (inputs at level 3).
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from typing import Dict

import numpy as np

import hetensor as ht
from hetensor import _core


def eval_mod(boot, ct):
    """EvalMod of the classic order (cosine, double angles, arcsine) from primitives."""
    eng = boot.ctx._engine
    y, _ = _core.eval_chebyshev(eng, ct, boot.poly)
    for _ in range(boot.params.double_angles):
        y = eng.add_scalar(eng.mul_scalar(eng.square(y), 2.0), -1.0)
    if boot.params.arcsine_degree:
        y, _ = _core.eval_chebyshev(eng, y, boot.arcsine_poly, boot.eval_mod_scale)
    return y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="toy-boot-insecure")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compact-keys", action="store_true", help="compact keys (a halves regenerated at use)")
    args = ap.parse_args()
    ht.set_num_threads(args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    # the classic order's context: its keys serve both orders, and the profile below is of that order
    ctx = ht.Context.from_preset(args.preset, bootstrap=True, compact_keys=args.compact_keys,
                                 bootstrap_order="classic")
    keygen, keygen_cpu = time.perf_counter() - t0, time.process_time() - c0
    keygen_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    boot, eng = ctx._bootstrapper, ctx._engine
    x = np.random.default_rng(5).uniform(-1, 1, ctx.slots)
    ct = eng.level_to(ctx.encrypt(x)._ct, 0)
    spent: Dict[str, float] = {}

    def timed(key, fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        spent[key] = spent.get(key, 0.0) + time.perf_counter() - t
        return out

    if boot.premultiplier > 1:
        ct = eng.mul_scalar(ct, float(boot.premultiplier))
    raised = timed("modraise+encapsulation", lambda c: _core.switch_to_dense(
        eng, _core.mod_raise(eng, _core.switch_to_sparse(eng, c))), ct)
    a = raised.with_scale(boot.input_scale / boot.headroom, 0.0)
    for k, lt in enumerate(boot.cts):
        if k > 0 and k == len(boot.cts) - 1 and boot.headroom > 1:
            a = a.with_scale(a.scale * boot.headroom, float(a.bound) / boot.headroom)
        a = timed(f"coeff_to_slot[{k}] ({len(lt.rotation_steps())} rotations)", _core.apply_linear_transform, eng, a, lt)
    conj = timed("conjugate", eng.conjugate, a)
    real = eng.add(a, conj)
    imag = _core.mul_by_i(eng, eng.sub(a, conj), True)
    real = timed("eval_mod (real)", eval_mod, boot, real)
    imag = timed("eval_mod (imaginary)", eval_mod, boot, imag)
    w = eng.add(real, _core.mul_by_i(eng, imag, False)).with_scale(boot.stc_input_scale, 1.0)
    for k, lt in enumerate(boot.stc):
        w = timed(f"slot_to_coeff[{k}] ({len(lt.rotation_steps())} rotations)", _core.apply_linear_transform, eng, w, lt)
    got = ctx.decrypt(ctx.encrypt(x)._like(w))
    print(f"{args.preset}, {args.threads} thread(s){', compact keys' if args.compact_keys else ''}: key generation "
          f"{keygen:.1f} s ({keygen_cpu:.1f} s CPU), keys {ctx.key_bytes() / 2**30:.2f} GiB "
          f"({ctx.key_bytes()} bytes), peak RSS after key generation {keygen_rss:.1f} GB")
    for key, sec in spent.items():
        print(f"  {key:40s} {sec:7.2f} s")
    print(f"  {'total':40s} {sum(spent.values()):7.2f} s, "
          f"{-math.log2(np.max(np.abs(got - x))):.1f} bits, level {w.level}, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")
    # The public calls, as a user makes them: one bootstrap, then two real
    # vectors in one complex-packed bootstrap (Context.bootstrap_many).
    y = np.random.default_rng(6).uniform(-1, 1, ctx.slots)
    cx, cy = ctx.encrypt(x).level_to(0), ctx.encrypt(y).level_to(0)
    t, c = time.perf_counter(), time.process_time()
    one = ctx.bootstrap(cx, stc_first=False)
    single, single_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    fx, fy = ctx.bootstrap_many([cx, cy], stc_first=False)
    pair = time.perf_counter() - t
    bits = [-math.log2(np.max(np.abs(ctx.decrypt(o) - v))) for o, v in ((one, x), (fx, x), (fy, y))]
    print(f"  ctx.bootstrap: {single:.2f} s ({single_cpu:.2f} s CPU), {bits[0]:.1f} bits; bootstrap_many of 2: {pair:.2f} s "
          f"({pair / 2:.2f} s per vector), {bits[1]:.1f} / {bits[2]:.1f} bits; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")
    # SlotToCoeff first: the inputs at level 3, the outputs 3 levels above the fresh level.
    lv = boot.params.stc_levels
    ex, ey = ctx.encrypt(x).level_to(lv), ctx.encrypt(y).level_to(lv)
    t = time.perf_counter()
    one = ctx.bootstrap(ex, stc_first=True)
    single = time.perf_counter() - t
    t = time.perf_counter()
    fx, fy = ctx.bootstrap_many([ex, ey], stc_first=True)
    pair = time.perf_counter() - t
    bits = [-math.log2(np.max(np.abs(ctx.decrypt(o) - v))) for o, v in ((one, x), (fx, x), (fy, y))]
    print(f"  ctx.bootstrap(stc_first=True) from level {lv} to {one.level}: {single:.2f} s, {bits[0]:.1f} bits; "
          f"bootstrap_many of 2: {pair:.2f} s ({pair / 2:.2f} s per vector), {bits[1]:.1f} / {bits[2]:.1f} bits; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")


if __name__ == "__main__":
    main()
