"""Peak memory and CPU time of one encrypted x encrypted product, with and without a workspace bound.

x (m x n) @ Enc(W) (n x p) at a preset and level, power-of-two rotation keys,
one thread: prints the route and its block maps (baby rotations and what
they take at once), then the product's CPU seconds, the process's peak RSS
and the bits against float64. ``--ws``: the workspace budget in bytes
(hetensor.linalg.set_workspace_budget; 0: none). Run one setting per
process (the peak RSS is the process's):

    python bench/map_workspace.py --preset n14 --n 192 --p 192 --level 6 --ws 0
    python bench/map_workspace.py --preset n14 --n 192 --p 192 --level 6 --ws 268435456
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main(argv=None) -> None:
    import hetensor as ht
    import hetensor.linalg as la
    from hetensor.layout import Layout
    from hetensor.linalg import ccmm
    from hetensor.linalg.keypolicy import keys_for_steps

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="n14")
    ap.add_argument("--m", type=int, default=128)
    ap.add_argument("--n", type=int, default=384)
    ap.add_argument("--p", type=int, default=384)
    ap.add_argument("--level", type=int, default=6)
    ap.add_argument("--ws", type=int, default=-1, help="workspace budget in bytes (default: the context's)")
    ap.add_argument("--dry", action="store_true", help="only the route and its maps")
    a = ap.parse_args(argv)
    ht.set_num_threads(1)
    ctx = ht.Context.from_preset(a.preset, seed=1)
    la.set_plaintext_budget(ctx, 256 << 20)
    if a.ws >= 0:
        la.set_workspace_budget(ctx, a.ws)
    lx, ly = Layout((a.m, a.n), ctx.slots, bm=128), Layout((a.n, a.p), ctx.slots, bm=512)
    c = ccmm.candidates(ctx, lx, ly, 1)[0]
    ctb = 2 * (a.level + 1) * ctx.ring_degree * 8
    print(f"{c['method']} tiles {c['setup'].get('tiles')}, one ciphertext {ctb / 2**20:.2f} MB", flush=True)
    for name, mp in zip(("left map", "right map"), c["maps"]):
        b = sum(len(x) for x in mp.babies)
        print(f"  {name}: {mp.in_cts} -> {mp.out_cts} ciphertexts, {mp.diagonals} diagonals, {b} baby rotations "
              f"({b * ctb / 2**20:.0f} MB at once unbounded), {sum(len(g) for g in mp.giants)} giant groups")
    if a.dry:
        return
    g = np.random.default_rng(0)
    x, w = g.uniform(-1, 1, (a.m, a.n)), g.uniform(-1, 1, (a.n, a.p)) / np.sqrt(a.n)
    ctx.key_policy = "power-of-two"
    ctx.generate_rotation_keys(keys_for_steps(ctx.slots, sorted(ccmm._candidate_steps(ctx, c, lx, ly)), "power-of-two"))
    X, W = ctx.encrypt(x, layout=lx, level=a.level), ctx.encrypt(w, layout=ly, level=a.level)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.process_time()
    z, cost = X.matmul(W, return_cost=True)
    cpu = time.process_time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    ref = x @ w
    bits = -np.log2(np.max(np.abs(ctx.decrypt(z) - ref)) / np.max(np.abs(ref)))
    print(f"product: {cpu:.1f} s CPU, peak RSS {before:.2f} GB before, {peak:.2f} GB after, {bits:.1f} bits; {cost}")


if __name__ == "__main__":
    main()
