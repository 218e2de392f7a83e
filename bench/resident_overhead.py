"""Host against device-resident ciphertexts (residues in the CPU backend's memory) op by op.

    python bench/resident_overhead.py --preset n14 --repeat 7

Both paths run the same backend-call sequences (key switching is written once, ckks/keyswitch),
so on the CPU backend the resident column measures what keeping residues in backend memory costs:
allocation through the backend and the per-call pointer lists. Median and min of `repeat` runs after
one warm-up, one thread. CPU backend only: CUDA ops are stream-ordered, so host wall clock would time
launches; GPU timings come from `python -m hetensor.bench --device cuda` (CUDA events).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hetensor as ht
from hetensor import _core


def timed(fn, repeat: int) -> tuple:
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(samples)), 1e3 * min(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="n14")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    ht.set_num_threads(1)
    ctx = ht.Context.from_preset(args.preset, rotations=[1], seed=5)
    x = np.random.default_rng(1).uniform(-1, 1, ctx.slots)
    X, Y = ctx.encrypt(x), ctx.encrypt(x[::-1].copy())
    dX, dY = (t._like(_core.device_upload(t._ct, "cpu")) for t in (X, Y))
    print(f"{args.preset}, 1 thread, resident in the CPU backend's memory: median (min) ms")
    print("| op | host | resident |")
    print("|---|---|---|")
    ops = [("mul_relin_rescale", lambda: X * Y, lambda: dX * dY),
           ("rotate", lambda: X.rotate(1), lambda: dX.rotate(1)),
           ("add", lambda: X + Y, lambda: dX + dY),
           ("mul_scalar 0.3", lambda: X * 0.3, lambda: dX * 0.3)]
    for name, host, dev in ops:
        (hm, hn), (dm, dn) = timed(host, args.repeat), timed(dev, args.repeat)
        print(f"| {name} | {hm:.1f} ({hn:.1f}) | {dm:.1f} ({dn:.1f}) |")


if __name__ == "__main__":
    main()
