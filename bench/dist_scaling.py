"""Scaling of hetensor.distributed: 1 vs P processes (torchrun, gloo over 127.0.0.1).

Driver:  python bench/dist_scaling.py --procs 1,2 [--preset n13-insecure] [--batch 16] [--sequences 8]
         [--json out.json]
launches ``torchrun --nproc_per_node P`` on this file for each P and prints a
table of rank 0's figures. Each rank (``--worker``):

- multiplies: rank 0 encrypts ``batch`` pairs, scatters them; every rank
  multiplies its shard (ct x ct, relinearize, rescale) and the products are
  all-gathered in batch order. Timed: the local products (slowest rank) and
  the all-gather.
- LoRA step: the data-parallel gradient step of tests/dist_lora_worker.py over
  ``sequences`` sequences (8 x 32 tokens x features, rank 2): local products,
  then two encrypted all-reduces. Timed: local step (slowest rank) and the
  all-reduces.

Key generation, the key broadcast and the scatter are set-up, reported apart.
Each process uses one core thread (OMP_NUM_THREADS=1), so P processes use P
cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time


def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    import hetensor as ht
    from hetensor import distributed as hd

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    def slowest(seconds: float) -> float:
        t = torch.tensor([seconds], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    out = {"world": world, "preset": args.preset}
    t0 = time.perf_counter()
    ctx = xs = ys = a = b = X = G = None
    m, d, r, p = 8, 32, 2, 32
    if rank == 0:
        rng = np.random.default_rng(1)
        ctx = ht.Context.from_preset(args.preset, seed=11, auto_keys=True)
        xs = [ctx.encrypt(rng.uniform(-1, 1, ctx.slots)) for _ in range(args.batch)]
        ys = [ctx.encrypt(rng.uniform(-1, 1, ctx.slots)) for _ in range(args.batch)]
        a = ctx.encrypt(rng.uniform(-1, 1, (d, r)) / math.sqrt(d), layout="matrix")
        b = ctx.encrypt(rng.uniform(-1, 1, (r, p)) / math.sqrt(r), layout="matrix")
        X = [ctx.encrypt(rng.uniform(-1, 1, (m, d)), layout="matrix") for _ in range(args.sequences)]
        G = [ctx.encrypt(rng.uniform(-1, 1, (m, p)), layout="matrix") for _ in range(args.sequences)]
        _lora(X[:1], G[:1], a, b)  # makes the rotation keys the step needs (untimed)
        ctx.auto_keys = False
    out["keygen_s"] = time.perf_counter() - t0
    hd.reset_stats()
    t = time.perf_counter()
    wctx = hd.broadcast_context(ctx, allow_insecure=True)
    out["key_broadcast_s"] = time.perf_counter() - t
    my_x, my_y = hd.scatter_tensors(xs, wctx), hd.scatter_tensors(ys, wctx)
    a, b = hd.broadcast_tensor(a, wctx), hd.broadcast_tensor(b, wctx)
    my_X, my_G = hd.scatter_tensors(X, wctx), hd.scatter_tensors(G, wctx)
    setup = dict(hd.stats().bytes)

    dist.barrier()
    t = time.perf_counter()
    prods = [u * v for u, v in zip(my_x, my_y)]
    out["mul_local_s"] = slowest(time.perf_counter() - t)
    hd.reset_stats()
    t = time.perf_counter()
    allp = hd.all_gather_tensors(prods, wctx)
    out["mul_gather_s"] = slowest(time.perf_counter() - t)
    out["mul_gather_bytes"] = hd.stats().total_bytes
    assert len(allp) == args.batch

    dist.barrier()
    t = time.perf_counter()
    da, db = _lora(my_X, my_G, a, b)
    out["lora_local_s"] = slowest(time.perf_counter() - t)
    hd.reset_stats()
    t = time.perf_counter()
    da, db = hd.all_reduce(da), hd.all_reduce(db)
    out["lora_allreduce_s"] = slowest(time.perf_counter() - t)
    out["lora_allreduce_bytes"] = hd.stats().bytes["all_reduce"]
    out["setup_bytes"] = setup
    if rank == 0:
        with open(args.worker, "w") as f:
            json.dump(out, f)
    dist.destroy_process_group()


def _lora(xs, gs, a, b):
    da = db = None
    for x, g in zip(xs, gs):
        da_s = x.T @ (g @ b.T)
        db_s = (x @ a).T @ g
        da = da_s if da is None else da + da_s
        db = db_s if db is None else db + db_s
    return da, db


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--preset", default="n13-insecure")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args)
        return 0
    rows = []
    for procs in [int(v) for v in args.procs.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            res = os.path.join(tmp, "rank0.json")
            env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs), "--master_addr",
                   "127.0.0.1", "--master_port", str(_free_port()), os.path.abspath(__file__), "--preset",
                   args.preset, "--batch", str(args.batch), "--sequences", str(args.sequences), "--worker", res]
            subprocess.run(cmd, env=env, check=True)
            with open(res) as f:
                rows.append(json.load(f))
    print(f"| processes | {args.batch} multiplies: local s | all-gather s (MB) | LoRA step over {args.sequences} "
          "seq: local s | 2 all-reduces s (MB) | key broadcast s (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['world']} | {r['mul_local_s']:.2f} | {r['mul_gather_s']:.2f} ({r['mul_gather_bytes'] / 1e6:.1f}) "
              f"| {r['lora_local_s']:.2f} | {r['lora_allreduce_s']:.3f} ({r['lora_allreduce_bytes'] / 1e6:.2f}) "
              f"| {r['key_broadcast_s']:.2f} ({r['setup_bytes'].get('keys', 0) / 1e6:.1f}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
