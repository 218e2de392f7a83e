"""Peak memory of key generation + one bootstrap, and where it goes.

    flock /tmp/hetensor-heavy.lock /usr/bin/time -v python bench/boot_memory.py --preset n16-boot

Prints, as one JSON line: the peak RSS (VmHWM) after the context and its
bootstrapping keys are made and after one ``ctx.bootstrap`` in the context's
default order (or ``--order``), the exact key bytes, the bytes of the encoded
CoeffToSlot / SlotToCoeff diagonals, the bootstrap's wall and CPU time, its
precision against float64 and the levels it leaves. ``--stages`` adds the
peak of each heavy call of the bootstrap (VmHWM reset before each through
/proc/self/clear_refs), ``--cache-limit-mb`` caps the core's buffer cache
first. A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any, Dict, List

import numpy as np

import hetensor as ht


def vm_hwm() -> int:
    """The process's peak resident set (bytes), from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_hwm() -> None:
    """Start a new VmHWM measurement (Linux: 5 written to clear_refs resets the peak)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def watch_stages(stages: List[Dict[str, Any]]) -> None:
    """Record the peak RSS of every heavy core call the bootstrap makes."""
    from hetensor import _core, boot

    def wrap(name: str, fn: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            reset_hwm()
            t = time.perf_counter()
            out = fn(*a, **k)
            stages.append(dict(call=name, level=int(getattr(a[1], "level", -1)) if len(a) > 1 else -1,
                               seconds=round(time.perf_counter() - t, 2), peak_gb=round(vm_hwm() / 1e9, 2),
                               cached_gb=round(ht.memory.cached_bytes() / 1e9, 2)))
            return out
        return call

    class Proxy:
        def __getattr__(self, name: str) -> Any:
            fn = getattr(_core, name)
            if name in ("apply_linear_transform", "eval_chebyshev", "mod_raise", "switch_to_sparse",
                        "switch_to_dense"):
                return wrap(name, fn)
            return fn

    boot._core = Proxy()  # type: ignore[assignment]


def transform_bytes(ctx: Any, transforms: list) -> int:
    """Bytes of encoded diagonals: each over the limbs of its level and P."""
    alpha = len(ctx._engine.p)
    return sum(lt.diagonals * (lt.level + 1 + (alpha if lt.extended else 0)) * ctx.ring_degree * 8
               for lt in transforms if lt is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="toy-boot-insecure")
    ap.add_argument("--order", choices=["stc_first", "classic"], default="stc_first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stages", action="store_true", help="the peak RSS of each heavy call")
    ap.add_argument("--cache-limit-mb", type=int, default=None, help="cap the core's buffer cache first")
    args = ap.parse_args()
    ht.set_num_threads(args.threads)
    if args.cache_limit_mb is not None:
        ht.memory.set_cache_limit(args.cache_limit_mb << 20)
    rec: Dict[str, Any] = dict(preset=args.preset, order=args.order, threads=args.threads,
                               cache_limit=ht.memory.cache_limit())
    t0 = time.perf_counter()
    ctx = ht.Context.from_preset(args.preset, bootstrap=True, bootstrap_order=args.order)
    rec["keygen_s"] = round(time.perf_counter() - t0, 1)
    rec["peak_after_keygen_gb"] = round(vm_hwm() / 1e9, 2)
    boot = ctx._bootstrapper
    rec["key_bytes"] = int(ctx.key_bytes())
    rec["cts_bytes"] = transform_bytes(ctx, list(boot.cts))
    stc = boot.stc_low() if args.order == "stc_first" else boot.stc
    rec["stc_bytes"] = transform_bytes(ctx, list(stc))
    c = ctx.bootstrap_contract
    x = np.random.default_rng(5).uniform(-1, 1, ctx.slots)
    ct = ctx.encrypt(x).level_to(c.input_level)
    stages: List[Dict[str, Any]] = []
    if args.stages:
        watch_stages(stages)
    t, cpu = time.perf_counter(), time.process_time()
    out = ctx.bootstrap(ct)
    rec["bootstrap_s"] = round(time.perf_counter() - t, 2)
    rec["bootstrap_cpu_s"] = round(time.process_time() - cpu, 2)
    rec["bits"] = round(-math.log2(float(np.max(np.abs(ctx.decrypt(out) - x)))), 2)
    rec["output_level"] = out.level
    rec["levels_left"] = out.level - c.input_level
    rec["peak_gb"] = round(vm_hwm() / 1e9, 2)
    rec["pool_cached_bytes"] = int(ht.memory.cached_bytes())
    if stages:
        rec["stages"] = stages
        rec["peak_gb"] = max(rec["peak_gb"], max(s["peak_gb"] for s in stages))
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
