"""One rank of the data-parallel LoRA gradient step (run by tests/test_distributed.py
under ``torchrun --nproc_per_node 2``; not collected by pytest).

Rank 0 is also the client: it makes the keys, encrypts the adapters A, B and
a batch of S sequences (X_s, G_s), and runs the single-process step first
(which generates every rotation key the products need). Then every rank gets
the evaluation keys (broadcast once), the adapters (broadcast) and its shard
of the sequences (scatter), computes its local gradient sums

    dA_r = sum_s X_s^T (G_s B^T),   dB_r = sum_s (X_s A)^T G_s,

and all-reduces them as ring elements. Rank 0 writes the single-process and
data-parallel results (limbs and decryptions) and the float64 reference to
OUT/rank0.npz; every rank writes its exchange statistics (and the error of an all-reduce of
tensors of different shapes) to OUT/rank{r}.json.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch.distributed as dist

import hetensor as ht
from hetensor import distributed as hd

SEQUENCES, M, D, R, P = 4, 8, 32, 2, 32


def local_step(xs, gs, a, b):
    """Per-sequence products and their in-order sums (dA, dB)."""
    da = db = None
    per_seq = []
    for x, g in zip(xs, gs):
        gb = g @ b.T
        da_s = x.T @ gb
        db_s = (x @ a).T @ g
        per_seq.append(da_s)
        da = da_s if da is None else da + da_s
        db = db_s if db is None else db + db_s
    return da, db, per_seq


def main(out: str) -> None:
    # The same code over NCCL where GPUs are (tests/test_distributed.py sets it): one GPU per rank.
    backend = os.environ.get("HETENSOR_DIST_BACKEND", "gloo")
    if backend == "nccl":
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    ctx = a = b = xs = gs = None
    arrays = {}
    if rank == 0:
        rng = np.random.default_rng(2026)
        A = rng.uniform(-1, 1, (D, R)) / math.sqrt(D)
        B = rng.uniform(-1, 1, (R, P)) / math.sqrt(R)
        X = rng.uniform(-1, 1, (SEQUENCES, M, D))
        G = rng.uniform(-1, 1, (SEQUENCES, M, P))
        ctx = ht.Context.from_preset("toy-insecure", seed=77, auto_keys=True)
        a, b = ctx.encrypt(A, layout="matrix"), ctx.encrypt(B, layout="matrix")
        xs = [ctx.encrypt(X[s], layout="matrix") for s in range(SEQUENCES)]
        gs = [ctx.encrypt(G[s], layout="matrix") for s in range(SEQUENCES)]
        da1, db1, per_seq1 = local_step(xs, gs, a, b)
        arrays.update(
            ref_da=sum(X[s].T @ G[s] @ B.T for s in range(SEQUENCES)),
            ref_db=sum((X[s] @ A).T @ G[s] for s in range(SEQUENCES)),
            single_da=ctx.decrypt(da1), single_db=ctx.decrypt(db1),
            single_da_limbs=da1._ct.limbs().copy(), single_db_limbs=db1._ct.limbs().copy(),
            single_per_seq=np.stack([p._ct.limbs() for p in per_seq1]))
        ctx.auto_keys = False  # the keys the step needs exist now; the view below carries them
    hd.reset_stats()
    wctx = hd.broadcast_context(ctx, allow_insecure=True)
    a = hd.broadcast_tensor(a, wctx)
    b = hd.broadcast_tensor(b, wctx)
    my_x = hd.scatter_tensors(xs, wctx)
    my_g = hd.scatter_tensors(gs, wctx)
    da, db, per_seq = local_step(my_x, my_g, a, b)
    da = hd.all_reduce(da)
    db = hd.all_reduce(db)
    gathered = hd.all_gather_tensors(per_seq, wctx)   # every sequence's dA, in batch order
    copies = hd.all_gather_tensors([da, db], wctx)   # each rank's reduced result, to compare
    st = hd.stats()
    # mismatched inputs fail on every rank (no rank sums garbage or hangs)
    try:
        hd.all_reduce(da if rank == 0 else db)
        mismatch = "no error"
    except ValueError as e:
        mismatch = str(e)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"bytes": st.bytes, "calls": st.calls, "shard": len(my_x), "world": world,
                   "public": wctx.is_public, "mismatch": mismatch}, f)
    if rank == 0:
        arrays.update(
            dist_da=ctx.decrypt(da), dist_db=ctx.decrypt(db),
            dist_da_limbs=da._ct.limbs().copy(), dist_db_limbs=db._ct.limbs().copy(),
            gathered_per_seq=np.stack([p._ct.limbs() for p in gathered]),
            copies_da=np.stack([c._ct.limbs() for c in copies[0::2]]),
            copies_db=np.stack([c._ct.limbs() for c in copies[1::2]]))
        np.savez(os.path.join(out, "rank0.npz"), **arrays)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
