"""CPU time of one bootstrapping linear transform (a CoeffToSlot or
SlotToCoeff level) with rotation keys for its steps only, so a secure-size
level can be timed without a bootstrap's keys:

    python bench/profile_transform.py --preset n16-boot --level 6 --repeat 3

(under 2 GB at level 6; at the top of n16-boot's chain about 4 GB). Prints
the BSGS shape and the process CPU time of each call.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import hetensor as ht
from hetensor import _core
from hetensor.boot import dft_factors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="toy-boot-insecure")
    ap.add_argument("--index", type=int, default=1, help="which of the three levels of the transform")
    ap.add_argument("--level", type=int, default=None, help="level to run at (default: where CoeffToSlot runs it)")
    ap.add_argument("--slot-to-coeff", action="store_true", help="SlotToCoeff's matrices instead of CoeffToSlot's")
    ap.add_argument("--expanded-keys", action="store_true", help="expanded keys (default: compact)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    ht.set_num_threads(args.threads)
    ctx = ht.Context.from_preset(args.preset, compact_keys=not args.expanded_keys)
    eng = ctx._engine
    mats = dft_factors(ctx.slots, 3, inverse=not args.slot_to_coeff)
    if not 0 <= args.index < len(mats):
        raise SystemExit(f"--index must be in [0, {len(mats) - 1}]")
    level = ctx.max_level - args.index if args.level is None else args.level
    if not 1 <= level <= ctx.max_level:
        raise SystemExit(f"--level must be in [1, {ctx.max_level}]")
    lt = _core.encode_linear_transform(eng, mats[args.index], level, 0, ctx.scale_at(level))
    eng.generate_rotation_keys(list(lt.rotation_steps()), level)
    x = np.random.default_rng(1).uniform(-1, 1, ctx.slots)
    ct = eng.level_to(ctx.encrypt(x)._ct, level)
    times = []
    for _ in range(args.repeat):
        c = time.process_time()
        _core.apply_linear_transform(eng, ct, lt)
        times.append(time.process_time() - c)
    name = "SlotToCoeff" if args.slot_to_coeff else "CoeffToSlot"
    print(f"{args.preset}, {name}[{args.index}] at level {level}, {args.threads} thread(s), "
          f"{'expanded' if args.expanded_keys else 'compact'} keys: {len(lt.babies)} baby and {len(lt.giants)} giant "
          f"steps, {lt.diagonals} diagonals; CPU per call {' '.join(f'{t:.3f}' for t in times)} s; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")


if __name__ == "__main__":
    main()
