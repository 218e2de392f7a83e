"""Time the context's default bootstrap as a user calls it.

    python bench/boot_default_order.py n16-boot

One thread: key generation, three ``ctx.bootstrap`` calls of a real vector
uniform in [-1, 1] at the contract's input level (the first call pays for
first-touch allocations: the system part of its CPU time), then one
complex-packed ``ctx.bootstrap_many`` of two vectors; prints wall and CPU
time, bits against float64, the levels and the process's peak RSS. A benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import math
import resource
import sys
import time

import numpy as np

import hetensor as ht


def main() -> None:
    ht.set_num_threads(1)
    t0 = time.perf_counter()
    ctx = ht.Context.from_preset(sys.argv[1] if len(sys.argv) > 1 else "n16-boot", bootstrap=True)
    print(f"keygen {time.perf_counter()-t0:.1f} s, keys {ctx.key_bytes()/2**30:.2f} GiB, contract {ctx.bootstrap_contract}, "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9:.2f} GB", flush=True)
    inl = ctx.bootstrap_contract.input_level
    rng = np.random.default_rng(5)
    for i in range(3):
        x = rng.uniform(-1, 1, ctx.slots)
        c = ctx.encrypt(x).level_to(inl)
        t, p, s = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
        o = ctx.bootstrap(c)
        w, cp = time.perf_counter() - t, time.process_time() - p
        sy = resource.getrusage(resource.RUSAGE_SELF).ru_stime - s
        bits = -math.log2(np.max(np.abs(ctx.decrypt(o) - x)))
        print(f"bootstrap {i}: {w:.2f} s wall ({cp:.2f} s CPU, {sy:.2f} s of it system), {bits:.2f} bits, "
              f"level {inl} -> {o.level}", flush=True)
    x, y = rng.uniform(-1, 1, ctx.slots), rng.uniform(-1, 1, ctx.slots)
    cx, cy = ctx.encrypt(x).level_to(inl), ctx.encrypt(y).level_to(inl)
    t = time.perf_counter()
    fx, fy = ctx.bootstrap_many([cx, cy])
    w = time.perf_counter() - t
    b = [-math.log2(np.max(np.abs(ctx.decrypt(o) - v))) for o, v in ((fx, x), (fy, y))]
    print(f"bootstrap_many of 2: {w:.2f} s ({w/2:.2f} s per vector), {b[0]:.2f} / {b[1]:.2f} bits; "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
