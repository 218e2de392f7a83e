"""One all-MiniLM-L6-v2 encoder layer (GK attention, rank-2 LoRA on q, k, v), encrypted (issue 11).

The layer (hidden 384, 12 heads, FFN 1536, 128 tokens; hetensor.examples.minilm)
is calibrated on eight sentences and planned on the context
(hetensor.nn.plan: every operation with its operands' shapes, layouts and
levels, the bootstraps, the keys). Then each distinct operation of the plan
(kind, operand layouts, level) is run once encrypted at its real shape and
timed, and the layer's time is the sum over the plan's operations: a full
encrypted layer takes about an hour of CPU on this machine. Precision against
plain mode comes from simulate mode with the noise measured on the context,
and from each timed operation against its float64 result.

    flock /tmp/hetensor-heavy.lock python bench/nn_minilm.py --preset n16-boot --json bench/results-nn-minilm.json
    python bench/nn_minilm.py --preset toy-boot-insecure --tokens 8 --small     # a quick check of the script

``--kinds gk,softmax`` plans both attentions and times the union of their operations.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time
import os
import sys
from typing import Any, Dict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_timing import Timings, classify, distinct, signature  # noqa: E402


def main(argv: Any = None, ctx: Any = None) -> Dict[str, Any]:
    """The bench (``argv``: its command line); ``ctx``: an already made context of ``--preset``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="n16-boot")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--kinds", default="gk")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--key-budget", type=float, default=2.0, help="GiB for new rotation keys (auto key policy)")
    ap.add_argument("--budget", type=float, default=1800.0, help="seconds for timing operations (most costly first)")
    ap.add_argument("--small", action="store_true", help="2 heads of 8, FFN 16 (a check of the script)")
    ap.add_argument("--trials", type=int, default=40, help="placement search: at most this many trial plans")
    ap.add_argument("--plain-adapters", action="store_true", help="keep A, B plaintext (CPMMs instead of CCMMs)")
    ap.add_argument("--json", default="")
    ap.add_argument("--reuse", default="",
                    help="a JSON of an earlier run at the same preset: its timed bootstraps (by ciphertext count) "
                         "and operations (by signature) are taken as they are, not timed again")
    args = ap.parse_args(argv)

    import hetensor as ht
    import hetensor.nn as hnn
    from hetensor.examples import minilm as M
    from hetensor.nn.plan import choose_policy, search_placement

    if args.threads:
        ht.set_num_threads(args.threads)
    t0 = time.perf_counter()
    w = M.load_weights()
    ids, mask = M.tokenize(M.SENTENCES, args.tokens)
    x = M.embed(w, ids)
    print(f"MiniLM weights and tokenizer loaded offline in {time.perf_counter() - t0:.1f} s: {len(w)} tensors, "
          f"{len(M.SENTENCES)} sentences x {args.tokens} tokens", flush=True)
    if args.small:
        x = x[:, :, :16]
    t0 = time.perf_counter()
    ctx = ctx if ctx is not None else ht.Context.from_preset(args.preset, bootstrap=True)
    print(f"context {args.preset}: {time.perf_counter() - t0:.1f} s; {ctx.describe()}", flush=True)
    depth = ctx.usable_levels - 1
    record: Dict[str, Any] = dict(preset=args.preset, tokens=args.tokens, kinds={})
    plans = {}
    for kind in args.kinds.split(","):
        if args.small:
            layer = _small_layer(kind)
        else:
            layer = M.encoder_layer(w, 0, attention=kind)
        t0 = time.perf_counter()
        layer.calibrate(x, mask=mask, max_depth=depth)
        plain = layer(x[:1], mask=mask[:1])
        print(f"[{kind}] calibrated on {len(x)} sentences and ran plain mode in {time.perf_counter() - t0:.1f} s",
              flush=True)
        sim = layer.simulate(x[:1], ctx, mask=mask[:1])  # plaintext adapters: simulate cannot hold Enc(A), Enc(B)
        err = float(np.max(np.abs(sim - plain)))
        sim_bits = -math.log2(err / float(np.max(np.abs(plain))))
        print(f"[{kind}] simulate vs plain (noise measured on {args.preset}, plaintext adapters, "
              f"{layer.last_run.circuits} bootstraps): max |diff| {err:.2e}, {sim_bits:.1f} bits", flush=True)
        for m in ([] if args.plain_adapters else layer.modules()):
            if hasattr(m, "encrypt_adapters"):
                m.encrypt_adapters(ctx)  # the server holds Enc(A^T), Enc(B^T): LoRA products are CCMMs
        shape = (1, args.tokens, x.shape[2])
        t0 = time.perf_counter()
        plan, options = choose_policy(layer, ctx, shape, mask=mask[:1], budget=int(args.key_budget * 2**30))
        jit = plan.circuits
        plan = search_placement(layer, ctx, shape, plan, mask=mask[:1], max_trials=args.trials)
        print(f"[{kind}] planned in {time.perf_counter() - t0:.1f} s: {plan} (just in time: {jit} bootstraps); "
              + ", ".join(f"{p}: {len(o.keys)} keys, {o.new_key_bytes / 2**20:.0f} MiB new" for p, o in options.items()),
              flush=True)
        counts = collections.Counter(classify(o) for o in plan.ops)
        print(f"[{kind}] operations: {dict(counts)}", flush=True)
        plans[kind] = plan
        record["kinds"][kind] = dict(plan=str(plan), jit_bootstraps=jit, counts=dict(counts), simulate_bits=sim_bits,
                                     key_options={p: o.new_key_bytes for p, o in options.items()})
    # keys for every plan, then time each distinct operation once (the costly kinds first)
    for plan in plans.values():
        ctx.key_policy = plan.key_policy
        need = [s for s in plan.new_keys if s not in set(ctx.rotation_steps)]
        if need:
            t0 = time.perf_counter()
            ctx.generate_rotation_keys(need)
            print(f"made {len(need)} rotation keys ({plan.key_policy}) in {time.perf_counter() - t0:.1f} s", flush=True)
    todo = distinct(o for plan in plans.values() for o in plan.ops)
    tm = Timings()
    times, cpu, reused = tm.times, tm.cpu, tm.reused  # cpu: reused ones from the old JSON if there
    if args.reuse:
        tm.reuse(args.reuse, todo)
        print(f"reused {len(reused)} timed operations from {args.reuse}", flush=True)
    if tm.drop_boot_transforms(ctx, todo):
        print("bootstraps all reused: dropped the bootstrapping transforms for the timing pass", flush=True)
    ctx.auto_keys = True  # a replayed operand's layout may differ from the plan's in a way that needs a key

    def dump() -> None:  # what is timed so far survives a kill (the OOM killer, a deadline)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(record, ops=tm.ops_json()), f, indent=1, default=str)

    tm.run(ctx, todo, args.budget, lambda sig: sum(1 for p in plans.values() for o in p.ops if signature(o) == sig),
           dump)
    for kind, plan in plans.items():
        per: Dict[str, float] = collections.defaultdict(float)
        part: Dict[str, float] = collections.defaultdict(float)  # by module: attention or the rest
        per_cpu: Dict[str, float] = collections.defaultdict(float)
        missing = collections.Counter()
        for o in plan.ops:
            s = signature(o)
            if s in times:
                n = o["cts"] if o["kind"] == "bootstrap" else 1
                sec = times[s][0] * n
                per[classify(o)] += sec
                per_cpu[classify(o)] += cpu.get(s, math.nan) * n
                part["attention module (projections, scores, exp, E v, its bootstraps)" if "attn" in o["module"]
                     else "rest of the layer"] += sec
            else:
                missing[classify(o)] += 1
        total = sum(per.values())
        print(f"\n[{kind}] one layer at {args.preset}, {args.tokens} tokens: {total:.0f} s summed over "
              f"{len(plan.ops)} planned operations ({len(times)} distinct ones timed)")
        for c, v in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"    {c:<32} {v:9.1f} s  ({100 * v / max(total, 1e-9):4.1f} %)  {per_cpu[c]:9.1f} s CPU")
        for c, v in part.items():
            print(f"    [{c}] {v:9.1f} s")
        if missing:
            print(f"    not timed (budget): {dict(missing)}")
        record["kinds"][kind].update(seconds=total, cpu_seconds=sum(per_cpu.values()), breakdown=dict(per),
                                      breakdown_cpu=dict(per_cpu), by_module=dict(part), untimed=dict(missing),
                                     attention_seconds=part.get(next((k for k in part if k.startswith("attention")),
                                                                     ""), 0.0))
    if len(plans) == 2 and all(record["kinds"][k].get("seconds") for k in plans):
        a, b = (record["kinds"][k]["seconds"] for k in plans)
        aa, ab = (record["kinds"][k]["attention_seconds"] for k in plans)
        print(f"softmax / GK time: layer {b / a:.2f}x, attention module {ab / max(aa, 1e-9):.2f}x")
    record["ops"] = tm.ops_json()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1, default=str)
    return record


def _small_layer(kind: str) -> Any:
    """A 16-wide, 2-head stand-in with MiniLM's structure (post-LN, GELU, LoRA rank 2)."""
    import hetensor.nn as hnn
    from hetensor.examples.minilm import BertLayer

    g = np.random.default_rng(0)
    cls = {"gk": hnn.GaussianKernelAttention, "softmax": hnn.SoftmaxAttention}[kind]
    att = cls(16, 2, lora_rank=2, rng=g)
    for m in (att.q, att.k, att.v):
        m.register_parameter("lora_B", g.normal(0.0, 0.02, (16, 2)), trainable=True)
    return BertLayer(att, hnn.LayerNorm(16), hnn.FeedForward(16, 32, "gelu", rng=g), hnn.LayerNorm(16))


if __name__ == "__main__":
    main()
