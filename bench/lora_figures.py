"""Figures of issue 9: LoRA 128x768 @ 768x8 @ 8x768 against one CPMM 128x768 @ 768x8 with a
plaintext A, and CPMM 128x768 @ 768x768 with the weight's diagonals cached or streamed.

Each op runs in its own context (its keys go with it), one warm-up call (which encodes what is
cached and checks the precision against float64), then ``--repeat`` timed calls; one JSON line
per op on stdout. Heavy at n16 (keys of 72 MiB each, minutes): run it alone, e.g.

    flock /tmp/hetensor-heavy.lock python bench/lora_figures.py --preset n16 --threads 1
    HETENSOR_BENCH_LEVEL=9 python bench/lora_figures.py --preset n16-boot --ops cpmm_128x768x768
    HETENSOR_BENCH_LEVEL=9 HETENSOR_BENCH_CACHE=0 python bench/lora_figures.py --preset n16-boot \\
        --ops cpmm_128x768x768
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import time

import hetensor as ht
from hetensor import linalg as la
from hetensor.bench.ops_linalg import LinalgCase


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="n16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ops", nargs="+", default=["lora_128x768x8x768", "cpmm_128x768x8"])
    args = ap.parse_args()
    ht.set_num_threads(args.threads)
    for op in args.ops:
        ctx = ht.Context.from_preset(args.preset)
        t0 = time.perf_counter()
        case = LinalgCase(ctx, op)
        setup = time.perf_counter() - t0
        note = case.first()
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            case.run()
            times.append(time.perf_counter() - t)
        rec = dict(op=op, preset=args.preset, threads=args.threads, level=os.environ.get("HETENSOR_BENCH_LEVEL"),
                   cache=os.environ.get("HETENSOR_BENCH_CACHE", "1"), median_s=statistics.median(times),
                   times_s=times, setup_s=setup, note=note,
                   peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        print(json.dumps(rec), flush=True)
        la.clear_cache(ctx)
        case.__dict__.clear()
        del case, ctx
        gc.collect()


if __name__ == "__main__":
    main()
