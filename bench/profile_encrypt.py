"""Encode, encrypt and add at one thread, wall and CPU time (CPU time is the
steadier figure on a busy machine), with numpy's add of the same number of
words as the memory-bandwidth floor of a ciphertext add.

    python bench/profile_encrypt.py --preset n16

The side-by-side figures with desilofhe come from the bench CLI:
``python -m hetensor.bench --preset n16 --threads 1 --ops encode,encrypt,add --peers desilofhe --repeat 9``.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import numpy as np

import hetensor as ht


def _timed(fn: Callable[[], object], repeat: int) -> str:
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    wall.sort()
    cpu.sort()
    return (f"wall min {wall[0] * 1e3:7.1f} median {wall[len(wall) // 2] * 1e3:7.1f} ms | "
            f"cpu min {cpu[0] * 1e3:7.1f} median {cpu[len(cpu) // 2] * 1e3:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="toy-insecure")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    ht.set_num_threads(1)
    ctx = ht.Context.from_preset(args.preset)
    x = np.random.default_rng(1).uniform(-1, 1, ctx.slots)
    X, Y = ctx.encrypt(x), ctx.encrypt(x)
    a = np.random.default_rng(2).integers(0, 2**40, X.nbytes // 8, dtype=np.uint64)
    b = a.copy()
    print(f"{args.preset}, 1 thread, ciphertext {X.nbytes / 2**20:.1f} MiB")
    print("  encode (top level)   ", _timed(lambda: ctx.encode(x, purpose="multiply"), args.repeat))
    print("  encrypt (public key) ", _timed(lambda: ctx.encrypt(x), args.repeat))
    print("  encrypt (symmetric)  ", _timed(lambda: ctx.encrypt(x, symmetric=True), args.repeat))
    print("  add (X + Y)          ", _timed(lambda: X + Y, 3 * args.repeat))
    print("  numpy add, same words", _timed(lambda: a + b, 3 * args.repeat))
    got = ctx.decrypt(ctx.encrypt(x))
    print(f"  fresh public-key precision {-math.log2(np.max(np.abs(got - x))):.1f} bits")


if __name__ == "__main__":
    main()
