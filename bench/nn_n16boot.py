"""The secure-size runs of issue 11 in one process, so the n16-boot keys are made once.

1. bench/nn_minilm.py: one MiniLM encoder layer (GK and softmax attention), planned,
   each distinct operation timed encrypted, summed.
2. python -m hetensor.examples.digits: the digits test split encrypted, in as many
   forwards as its batch needs (one at n16-boot: per-sequence attention), until the deadline.

    flock /tmp/hetensor-heavy.lock python bench/nn_n16boot.py --minilm-budget 600 --digits-deadline 1500
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="n16-boot")
    ap.add_argument("--minilm-budget", type=float, default=600.0, help="seconds of operation timing (MiniLM)")
    ap.add_argument("--minilm-kinds", default="gk,softmax")
    ap.add_argument("--digits-deadline", type=float, default=1500.0, help="seconds for the digits run")
    ap.add_argument("--until", type=float, default=0.0,
                    help="a wall-clock end (Unix time): the digits deadline is cut to end by then, and the "
                         "MiniLM timing budget to a third of what is left after the keys")
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--json", default="bench/results-nn-minilm-n16-boot.json")
    ap.add_argument("--digits-json", default="bench/results-nn-digits-n16-boot.json")
    args = ap.parse_args()

    import hetensor as ht
    from hetensor.examples import digits

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nn_minilm

    t0 = time.perf_counter()
    ctx = ht.Context.from_preset(args.preset, bootstrap=True)
    print(f"context {args.preset} with bootstrapping keys: {time.perf_counter() - t0:.1f} s", flush=True)
    budget = args.minilm_budget
    if args.until:
        budget = max(60.0, min(budget, (args.until - time.time()) / 3))
    if not args.skip_minilm:
        nn_minilm.main(["--preset", args.preset, "--kinds", args.minilm_kinds, "--budget", str(budget),
                        "--json", args.json], ctx=ctx)
    deadline = args.digits_deadline
    if args.until:
        deadline = max(1.0, min(deadline, args.until - time.time()))
    print(f"\n=== digits (deadline {deadline:.0f} s) ===", flush=True)
    digits.main(["--preset", args.preset, "--encrypted", "-1", "--simulated", "-1", "--key-budget", "2",
                 "--deadline", str(deadline), "--json", args.digits_json], ctx=ctx)


if __name__ == "__main__":
    main()
