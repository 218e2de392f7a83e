"""Process CPU time of one bootstrap at a small ring, where the cost of driving
the circuit (Python calls, metadata copies) is largest next to the arithmetic.

    python bench/boot_one_call.py toy-boot-insecure 15

One thread; for each order, ``ctx.bootstrap`` of a real vector, of a complex
vector, and ``ctx.bootstrap_many`` of two real vectors (one complex-packed
bootstrap), each repeated (after one warm-up call); prints the minimum and the
median of time.process_time per call, in ms. A benchmark, not a test.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import hetensor as ht


def _cpu_ms(fn, reps: int):
    fn()  # first-touch allocations
    out = []
    for _ in range(reps):
        p = time.process_time()
        fn()
        out.append(1e3 * (time.process_time() - p))
    return min(out), statistics.median(out)


def main() -> None:
    preset = sys.argv[1] if len(sys.argv) > 1 else "toy-boot-insecure"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    ht.set_num_threads(1)
    ctx = ht.Context.from_preset(preset, bootstrap=True, seed=1)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, ctx.slots), rng.uniform(-1, 1, ctx.slots)
    for stc_first in (True, False):
        inl = ctx._bootstrapper.contract_of(stc_first).input_level
        cx, cy = ctx.encrypt(x).level_to(inl), ctx.encrypt(y).level_to(inl)
        cz = ctx.encrypt(x + 1j * y).level_to(inl)
        order = "stc_first" if stc_first else "classic"
        for name, fn in (("real", lambda: ctx.bootstrap(cx, stc_first=stc_first)),
                         ("complex", lambda: ctx.bootstrap(cz, stc_first=stc_first)),
                         ("pair", lambda: ctx.bootstrap_many([cx, cy], stc_first=stc_first))):
            lo, med = _cpu_ms(fn, reps)
            print(f"{preset} {order:9s} {name:7s}: min {lo:7.1f} ms, median {med:7.1f} ms CPU per call", flush=True)


if __name__ == "__main__":
    main()
