"""hetensor demo: an encrypted computation, checked against numpy.

Run ``python -m hetensor.demo`` (``--preset n16`` for the large secure ring,
``--threads 2`` to use two cores). The client encrypts two vectors, the
"server" evaluates a small polynomial with a rotation-based sliding sum on the
ciphertexts, and the client decrypts and compares with float64 numpy.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, List, Tuple

import numpy as np

import hetensor as ht


def _bits(got: np.ndarray, ref: np.ndarray) -> float:
    err = float(np.max(np.abs(np.asarray(got) - ref)))
    return float("inf") if err == 0 else -np.log2(err)


def _timed(label: str, fn: Callable, rows: List[Tuple[str, float]]):
    start = time.perf_counter()
    out = fn()
    rows.append((label, (time.perf_counter() - start) * 1e3))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="n14", help="parameter preset (see hetensor.presets())")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the core")
    parser.add_argument("--seed", type=int, default=7, help="seed of the demo data (not of the keys)")
    args = parser.parse_args(argv)

    ht.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    rows: List[Tuple[str, float]] = []

    ctx = _timed("key generation (secret, public, relin, 3 rotation keys)",
                 lambda: ht.Context.from_preset(args.preset, rotations=[1, 2, -1]), rows)
    print(ctx.describe())
    n = min(ctx.slots, 4096)
    x = rng.uniform(-1, 1, n)
    y = rng.uniform(-1, 1, n)

    X = _timed("encrypt x (public key)", lambda: ctx.encrypt(x), rows)
    Y = _timed("encrypt y (public key)", lambda: ctx.encrypt(y), rows)
    XY = _timed("x * y (multiply, relinearize, rescale)", lambda: X * Y, rows)
    P = _timed("0.5 * x^2 + x*y - 0.25", lambda: (X * X) * 0.5 + XY - 0.25, rows)
    def sliding_sum():
        p0, p1, p2 = P.rotate_many([0, 1, 2])  # one decomposition, two key switches
        return p0 + p1 + p2

    R = _timed("sliding sum p[i] + p[i+1] + p[i+2] (hoisted rotations)", sliding_sum, rows)
    out = _timed("decrypt", lambda: ctx.decrypt(R), rows)

    p_ref = 0.5 * x * x + x * y - 0.25
    full = np.zeros(ctx.slots * X.num_ciphertexts)
    full[:n] = p_ref
    ref = (full + np.roll(full, -1) + np.roll(full, -2))[:n]

    print(f"\nencrypted {n} values per operand; result at level {R.level} of {ctx.max_level}")
    print(f"{'operation':58s} {'ms':>10s}")
    for label, ms in rows:
        print(f"{label:58s} {ms:10.1f}")
    print(f"\nprecision of x*y:              {_bits(ctx.decrypt(XY), x * y):5.1f} bits")
    print(f"precision of the whole result: {_bits(out, ref):5.1f} bits (max error vs float64 numpy)")


if __name__ == "__main__":
    main()
