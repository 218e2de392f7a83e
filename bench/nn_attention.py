"""Gaussian-kernel vs softmax attention, encrypted, at the same shapes (issue 11).

For each kind: a torch twin with random weights, converted and calibrated on
random tokens, compiled (keys, encodings: not timed), then one encrypted
forward timed, with its bootstraps and its agreement with plain mode.

    python bench/nn_attention.py --preset toy-boot-insecure --batch 2 --seq 8 --d 16 --heads 2
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="toy-boot-insecure")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=8)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--lora", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default="")
    ap.add_argument("--kinds", default="gk,softmax")
    args = ap.parse_args()

    import torch

    import hetensor as ht
    import hetensor.nn as hnn
    from hetensor import torch as htt

    if args.threads:
        ht.set_num_threads(args.threads)
    ctx = ht.Context.from_preset(args.preset, bootstrap=True)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (args.batch, args.seq, args.d))
    calib = rng.normal(0, 1, (64, args.seq, args.d))
    out = []
    kinds = {"gk": htt.GaussianKernelAttention, "softmax": htt.SoftmaxAttention}
    for kind in args.kinds.split(","):
        cls = kinds[kind]
        torch.manual_seed(0)
        twin = cls(args.d, args.heads, lora_rank=args.lora).double()
        model = hnn.from_torch(twin, calibration=calib, max_depth=ctx.usable_levels - 1)
        plain = model(x)
        rep = model.compile(ctx, x)
        ct, seq = hnn.encrypt_tokens(ctx, x)
        t0 = time.perf_counter()
        y = ctx.decrypt(model(ct, seq_len=seq))
        sec = time.perf_counter() - t0
        bits = -math.log2(np.max(np.abs(y - plain.reshape(y.shape))) / np.max(np.abs(plain)))
        row = dict(kind=kind, preset=args.preset, batch=args.batch, seq=args.seq, d=args.d, heads=args.heads,
                   lora=args.lora, seconds=sec, bootstraps=model.last_run.circuits,
                   tensors_refreshed=len(model.last_run.bootstraps), bits_vs_plain=bits,
                   rotation_keys=rep.rotation_keys)
        out.append(row)
        print(json.dumps(row), flush=True)
    if len(out) == 2:
        gk, sm = out
        print(f"softmax / GK time: {sm['seconds'] / gk['seconds']:.2f}x "
              f"({sm['bootstraps']} vs {gk['bootstraps']} bootstraps)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
