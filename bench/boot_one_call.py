"""Process CPU time of one bootstrap at a small ring, where the cost of driving
the circuit from Python (a call, an argument conversion and a result object
per step) is largest next to the arithmetic.

    python bench/boot_one_call.py toy-boot-insecure 15

One thread; for each order, a real vector, a complex vector and a pair of real
vectors (one complex-packed bootstrap), each run two ways, interleaved in the
same process so that both meet the same machine load: "one call", the
executor as ``ctx.bootstrap`` / ``bootstrap_many`` run it (cpp/boot/executor),
and "op by op", the same primitives sequenced from Python as hetensor/boot.py
did before the executor (tests/_boot_reference.py; the results are equal word
for word). Prints the minimum and the median of time.process_time per call
(ms), and the calls into _core per bootstrap. A benchmark, not a test.
"""
from __future__ import annotations

import pathlib
import statistics
import sys
import time

import numpy as np

import hetensor as ht

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import _boot_reference as ref  # noqa: E402  (the former Python sequence)


def _core_calls(fn) -> int:
    """Calls into the extension module while fn runs (functions and methods)."""
    n = 0

    def prof(frame, event, arg):
        nonlocal n
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            mod = getattr(arg, "__module__", None) or getattr(type(owner), "__module__", "")
            n += mod == "hetensor._core"

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return n


def main() -> None:
    preset = sys.argv[1] if len(sys.argv) > 1 else "toy-boot-insecure"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    ht.set_num_threads(1)
    ctx = ht.Context.from_preset(preset, bootstrap=True, seed=1)
    boot = ctx._bootstrapper
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, ctx.slots), rng.uniform(-1, 1, ctx.slots)
    for stc_first in (True, False):
        inl = boot.contract_of(stc_first).input_level
        cx, cy = ctx.encrypt(x).level_to(inl), ctx.encrypt(y).level_to(inl)
        cz = ctx.encrypt(x + 1j * y).level_to(inl)
        order = "stc_first" if stc_first else "classic"
        cases = {
            "real": (lambda: boot.bootstrap(cx._ct, 1.0, stc_first, real_values=True),
                     lambda: ref.bootstrap(boot, cx._ct, 1.0, stc_first, True)),
            "complex": (lambda: boot.bootstrap(cz._ct, 1.0, stc_first),
                        lambda: ref.bootstrap(boot, cz._ct, 1.0, stc_first)),
            "pair": (lambda: boot.bootstrap_many([cx._ct, cy._ct], [1.0, 1.0], stc_first),
                     lambda: ref.bootstrap_pair(boot, cx._ct, cy._ct, 1.0, 1.0, stc_first)),
        }
        for name, (one, steps) in cases.items():
            one(), steps()  # first-touch allocations
            times = {"one call": [], "op by op": []}
            for _ in range(reps):
                for key, fn in (("one call", one), ("op by op", steps)):
                    p = time.process_time()
                    fn()
                    times[key].append(1e3 * (time.process_time() - p))
            calls = {"one call": _core_calls(one), "op by op": _core_calls(steps)}
            for key, ts in times.items():
                print(f"{preset} {order:9s} {name:7s} {key:8s}: min {min(ts):7.1f} ms, median "
                      f"{statistics.median(ts):7.1f} ms CPU; {calls[key]:3d} calls into _core", flush=True)


if __name__ == "__main__":
    main()
