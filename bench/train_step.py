"""One LoRA fine-tuning step of the MiniLM-sized encoder layer, planned (issue 12).

The layer of bench/nn_minilm.py (hidden 384, 12 heads, FFN 1536, 128 tokens,
rank-2 LoRA on q, k, v with encrypted adapters; ``--small``: width 16, 2 heads)
runs forward (training mode), backward of an MSE loss and one AdamW update
(encrypted moments) on *ghost* tensors (hetensor.nn.plan: shapes, layouts and
levels, no data), so every operation of the step is listed with its operands,
level and ciphertext count, and every bootstrap with its site. The context is
planning-only: it has the preset's chain and bootstrap levels but makes no
bootstrapping keys (a planned bootstrap is only a change of level), so the
plan of an n16-boot step needs no heavy key generation. Output: the counts
per phase (forward, backward, optimizer) and kind, and the ops as JSON for
composing a time from per-operation timings (bench/nn_minilm.py measures those).

    python bench/train_step.py --preset n16-boot --kinds gk --json plan-n16-boot.json
    python bench/train_step.py --preset n12-boot9-insecure --small --kinds gk,softmax,full-softmax   # a quick check

Kinds: ``gk``, ``softmax`` (LoRA rank 2 on q, k, v), ``full-softmax``, ``full-gk`` (the q, k, v
weights themselves train, encrypted: hetensor.nn.full_qkv).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Tuple

import numpy as np


def planning_context(preset: str) -> Any:
    """A context with ``preset``'s chain whose bootstrap level is set but whose bootstrapping
    keys are not made (enough to plan; a real bootstrap would fail)."""
    import hetensor as ht
    from hetensor.boot import BOOT_PRESETS, Bootstrapper

    ctx = ht.Context.from_preset(preset)
    ctx._attach_bootstrapper(Bootstrapper(ctx, BOOT_PRESETS[preset]))
    return ctx


def plan_step(layer: Any, ctx: Any, n_tokens: int, mask: Any, opt: Any) -> Dict[str, List[Dict[str, Any]]]:
    """Forward (training), backward of the MSE gradient, AdamW on every adapter, all on ghosts."""
    import hetensor.nn as hnn
    from hetensor.linalg import runmode as rm
    from hetensor.nn.autograd import backward_module, parameters
    from hetensor.nn.backward import Ops
    from hetensor.nn.plan import GhostArray, Recorder, _ghost_input, trace_modules
    from hetensor.nn.run import Run
    from hetensor.nn.tape import Tape

    # a fresh step: a gradient left by an earlier plan would be accumulated into, and the ops on it
    # recorded by that plan's Recorder (its ghosts'), not this one's (the AdamW ops went missing)
    for p in parameters(layer):
        p.zero_grad()
    rec = Recorder()
    d = layer.attn.d_model
    x = _ghost_input(ctx, n_tokens, d, rec)
    run = Run(layer, "plan", ctx=ctx, batch=1, seq_len=n_tokens, key_mask=mask)
    run.tape = Tape()
    trace_modules(run, rec)
    phases: Dict[str, List[Dict[str, Any]]] = {}
    y = run.call(layer, x)
    phases["forward"] = list(rec.ops)
    n0 = len(rec.ops)
    # the MSE gradient 2 (y - t) / numel with a plaintext target, then the layer's backward
    rec.where.append("loss")
    g = hnn.MSELoss()(np.zeros(y.shape), np.zeros(y.shape)).criterion.gradient(y, np.zeros(y.shape), run)
    rec.where.pop()
    # each backward pass's operations are attributed to its module (as the forward's), for the breakdown
    from hetensor.nn.autograd import BACKWARD

    saved = dict(BACKWARD)

    def attributed(fn: Any) -> Any:
        def bwd(module: Any, grad: Any, r: Any, need_dx: bool) -> Any:
            rec.where.append(run.name_of(module))
            try:
                return fn(module, grad, r, need_dx)
            finally:
                rec.where.pop()
        return bwd

    BACKWARD.update({cls: attributed(fn) for cls, fn in saved.items()})
    try:
        backward_module(layer, g, run)
    finally:
        BACKWARD.clear()
        BACKWARD.update(saved)
    phases["backward"] = rec.ops[n0:]
    n1 = len(rec.ops)
    rec.where.append("AdamW")
    for p in parameters(layer):
        gt = p.grad_tensor
        w = GhostArray(rm.GhostTensor.like(p.data), rec)
        st: Dict[str, Any] = {}
        new = opt.update(p, w, gt, st, 1e-3, run)
        top = ctx.fresh_level - run.reserve
        if new.level < top + run.reserve:
            Ops(run, p.module, "opt.").ready([(new, top, p.name + ".fresh", 1.0)])
    rec.where.pop()
    phases["optimizer"] = rec.ops[n1:]
    recorded = sum(o["cts"] for o in rec.ops if o["kind"] == "bootstrap")
    if recorded != run.circuits:
        raise RuntimeError(f"internal: the plan recorded {recorded} bootstrap circuits but the step ran "
                           f"{run.circuits}: some operations went to another Recorder")
    phases["_bootstraps"] = list(run.bootstraps)  # type: ignore[assignment]
    phases["_circuits"] = run.circuits  # type: ignore[assignment]
    phases["_steps"] = sorted(rec.steps)  # type: ignore[assignment]
    return phases


PHASES = ("forward", "backward", "optimizer")


def parse_shard(text: str) -> Tuple[int, int]:
    """``K/N`` of --shard as (K, N); ``""`` is the whole run (0, 1)."""
    if not text:
        return 0, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: give K/N with integers, e.g. 0/2 and 1/2 for two processes") from None
    if not 0 <= k < n:
        raise ValueError(f"--shard {text!r}: K must be in 0..N-1 (0-based), e.g. 0/2 and 1/2")
    return k, n


def choose_key_policy(ctx: Any, steps: Any, budget: int) -> Tuple[str, Dict[str, int]]:
    """The first of ``exact``, ``few``, ``power-of-two`` (fastest first) whose new rotation keys for
    ``steps`` fit ``budget`` bytes, else the one with the fewest new bytes (as hetensor.nn.plan.choose_policy)."""
    from hetensor.linalg.keypolicy import POLICIES, keys_for_steps

    have = set(int(s) for s in ctx.rotation_steps)
    need = {p: ctx.key_bytes([k for k in keys_for_steps(ctx.slots, steps, p) if k not in have]) for p in POLICIES}
    for p in POLICIES:
        if need[p] <= budget:
            return p, need
    return min(need, key=need.get), need  # type: ignore[arg-type]


def summarize(kind: str, phases: Dict[str, Any], tm: Any, errors: Dict[Tuple, str]) -> Dict[str, Any]:
    """Wall and CPU seconds of one step of ``kind`` per phase and per class (sum over the planned operations
    of the per-operation timings), and what is not timed (by class, with the reason)."""
    from op_timing import classify, signature

    out: Dict[str, Any] = dict(seconds=0.0, cpu_seconds=0.0, phases={}, classes={}, classes_cpu={},
                               not_timed={}, untimed_signatures=[])
    untimed = set()
    weights: Dict[str, int] = collections.Counter()  # each signature's multiplicity in the step (circuits for bootstraps)
    for ph in PHASES:
        wall: Dict[str, float] = collections.defaultdict(float)
        cpu: Dict[str, float] = collections.defaultdict(float)
        missing: Dict[str, int] = collections.Counter()
        for o in phases[ph]:
            s, c = signature(o), classify(o)
            weights[repr(s)] += o["cts"] if o["kind"] == "bootstrap" else 1
            if s not in tm.times:
                missing[c] += 1
                untimed.add(s)
                continue
            n = o["cts"] if o["kind"] == "bootstrap" else 1  # a bootstrap's timing is per circuit
            wall[c] += tm.times[s][0] * n
            cpu[c] += tm.cpu.get(s, math.nan) * n
            out["classes"][c] = out["classes"].get(c, 0.0) + tm.times[s][0] * n
            out["classes_cpu"][c] = out["classes_cpu"].get(c, 0.0) + tm.cpu.get(s, math.nan) * n
        out["phases"][ph] = dict(seconds=sum(wall.values()), cpu_seconds=sum(cpu.values()), classes=dict(wall),
                                 classes_cpu=dict(cpu), ops=len(phases[ph]), not_timed=dict(missing))
        out["seconds"] += sum(wall.values())
        out["cpu_seconds"] += sum(cpu.values())
        for c, n in missing.items():
            out["not_timed"][c] = out["not_timed"].get(c, 0) + n
    out["untimed_signatures"] = [dict(sig=repr(s), reason=errors.get(s, "budget")) for s in sorted(untimed, key=repr)]
    out["complete"] = not untimed
    out["signature_weights"] = dict(weights)
    return out


def main(argv: Any = None, ctx: Any = None) -> Dict[str, Any]:
    """The bench (``argv``: its command line); ``ctx``: an already made context of ``--preset``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="n16-boot")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--kinds", default="gk")
    ap.add_argument("--small", action="store_true", help="width 16, 2 heads, FFN 32 (a check of the script)")
    ap.add_argument("--json", default="")
    ap.add_argument("--time", action="store_true",
                    help="time each distinct operation of the step once, encrypted, on a real bootstrapping "
                         "context, and sum over the plan (otherwise: plan only, no keys)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--key-budget", type=float, default=2.0, help="GiB for new rotation keys (key policy choice)")
    ap.add_argument("--budget", type=float, default=3600.0, help="seconds for timing operations (most costly first)")
    ap.add_argument("--reuse", default=None, action="append",
                    help="a JSON of bench/nn_minilm.py or of this script at the same preset: its timed operations "
                         "(by signature; bootstraps by ciphertext count) are not timed again (repeatable)")
    ap.add_argument("--no-boot-keys", action="store_true",
                    help="with --time: no bootstrapping keys (saves their memory and time) when every bootstrap "
                         "of the step is reused or resumed; one that is not is listed as not timed")
    ap.add_argument("--resume", action="store_true",
                    help="with --time: continue an interrupted run from --json (written after every timed "
                         "operation): what it timed is not timed again")
    ap.add_argument("--shard", default="",
                    help="K/N with --time: time only every N-th operation left to time, from the K-th (0-based), "
                         "so that N processes (each with its own --json, a copy of the run's) share the work; "
                         "then one run with --resume and --merge on each shard's JSON sums the step")
    ap.add_argument("--only", default="",
                    help="with --time: time only the operations of these kinds (comma-separated, e.g. bootstrap, "
                         "or ccmm,cpmm); the rest are listed as not timed")
    ap.add_argument("--merge", default=None, action="append",
                    help="with --resume: a shard's JSON (see --shard) whose own timings count as this run's "
                         "(repeatable)")
    args = ap.parse_args(argv)

    import hetensor as ht
    import hetensor.nn as hnn
    import hetensor.optim as hopt
    from hetensor.examples import minilm as M

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nn_minilm
    from op_timing import classify, distinct, signature, write_json

    if args.resume and not (args.time and args.json):
        raise ValueError("--resume continues a timing run: give --time and the run's --json")
    if args.merge and not args.resume:
        raise ValueError("--merge adds shards' timings to a resumed run: give --resume too")
    parse_shard(args.shard)  # a bad --shard fails before the minutes of setup
    if args.threads:
        ht.set_num_threads(args.threads)
    if args.small:  # a check of the script: no weights or tokenizer needed (they are optional packages)
        w = None
        g = np.random.default_rng(0)
        x = g.normal(0.0, 1.0, (len(M.SENTENCES), args.tokens, 16))
        mask = np.ones((len(M.SENTENCES), args.tokens))
        mask[1::2, args.tokens - 2:] = 0.0  # padding in every other sequence, as real sentences have
    else:
        w = M.load_weights()
        ids, mask = M.tokenize(M.SENTENCES, args.tokens)
        x = M.embed(w, ids)
    t0 = time.perf_counter()
    if ctx is None:
        real = args.time and not args.no_boot_keys
        ctx = ht.Context.from_preset(args.preset, bootstrap=True) if real else planning_context(args.preset)
    print(f"{'context' if args.time and not args.no_boot_keys else 'planning context (no bootstrapping keys)'} {args.preset}: "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    depth = ctx.usable_levels - 1
    record: Dict[str, Any] = dict(preset=args.preset, tokens=args.tokens, small=args.small, kinds={})
    layers: Dict[str, Any] = {}
    opt_for = lambda ps: hopt.AdamW(ps, lr=1e-3, eps=1e-4, weight_decay=0.01, max_depth=depth)  # noqa: E731
    for kind in args.kinds.split(","):
        # "full-softmax" / "full-gk": the q, k, v weights train (encrypted, CCMM) instead of LoRA adapters
        att = kind[len("full-"):] if kind.startswith("full-") else kind
        if att not in ("gk", "softmax"):
            raise ValueError(f"unknown kind {kind!r}: use gk, softmax, full-gk or full-softmax")
        layer = nn_minilm._small_layer(att) if args.small else M.encoder_layer(w, 0, attention=att)
        t0 = time.perf_counter()
        layer.calibrate(x, mask=mask, max_depth=depth)
        if att != kind:
            hnn.full_qkv(layer)
        target = np.random.default_rng(0).normal(0, 1, x.shape)
        hnn.calibrate_training(layer, x, target, hnn.MSELoss(), batch_size=1, mask=mask, optimizer=opt_for)
        print(f"[{kind}] calibrated (forward, then a plain training pass) in {time.perf_counter() - t0:.1f} s",
              flush=True)
        hnn.encrypt_adapters(layer, ctx)
        layers[kind] = layer

    def plan_all() -> Dict[str, Any]:
        plans = {}
        for kind, layer in layers.items():
            t0 = time.perf_counter()
            try:
                phases = plan_step(layer, ctx, args.tokens, mask[:1], opt_for(layer.lora_parameters()))
            except ValueError as err:  # e.g. softmax on MiniLM's scores: 1/x of the row sums out of reach
                print(f"[{kind}] not planned: {err}", flush=True)
                record["kinds"][kind] = dict(error=str(err))
                continue
            print(f"[{kind}] planned one step in {time.perf_counter() - t0:.1f} s: {phases['_circuits']} bootstrap "
                  f"circuits ({len(phases['_bootstraps'])} tensors refreshed)", flush=True)
            plans[kind] = phases
        return plans

    plans = plan_all()
    if plans:
        steps = sorted({s for p in plans.values() for s in p["_steps"]})
        policy, need = choose_key_policy(ctx, steps, int(args.key_budget * 2**30))
        print("new rotation keys per key policy: " + ", ".join(f"{p} {b / 2**20:.0f} MiB" for p, b in need.items())
              + f"; {'chosen' if args.time else 'would choose'}: {policy}", flush=True)
        record.update(key_policy=policy, key_options=need)
        if args.time and policy != ctx.key_policy:
            ctx.key_policy = policy
            plans = plan_all()  # the plans' layouts do not depend on it, but replan under it to be exact
    for kind, phases in plans.items():
        out: Dict[str, Any] = dict(bootstrap_circuits=phases["_circuits"], bootstrapped_tensors=len(phases["_bootstraps"]))
        for name in PHASES:
            ops = phases[name]
            cnt = collections.Counter(classify(o) for o in ops)
            boots = sum(o["cts"] for o in ops if o["kind"] == "bootstrap")
            out[name] = dict(counts=dict(cnt), bootstrap_circuits=boots, ops=len(ops),
                             distinct=len(distinct(ops)),
                             signatures=[list(map(str, signature(o)[:4])) for o in ops])
            print(f"  {name:<9} {len(ops):5d} ops ({len(distinct(ops))} distinct), {boots:4d} bootstrap circuits: "
                  f"{dict(cnt)}", flush=True)
        record["kinds"][kind] = out
    if args.time and plans:
        time_plans(ctx, plans, record, args)
    if args.json:
        write_json(args.json, record)
    return record


def time_plans(ctx: Any, plans: Dict[str, Any], record: Dict[str, Any], args: Any) -> None:
    """Time each distinct operation of the planned steps (bootstraps first, then the bootstrapping transforms
    are freed, then the costly kinds first), and sum per kind, phase and class."""
    from op_timing import Timings, distinct, signature, write_json

    from hetensor.linalg.keypolicy import keys_for_steps

    keys = keys_for_steps(ctx.slots, sorted({s for p in plans.values() for s in p["_steps"]}), ctx.key_policy)
    need = [k for k in keys if k not in set(int(s) for s in ctx.rotation_steps)]
    if need:
        t0 = time.perf_counter()
        ctx.generate_rotation_keys(need)
        print(f"made {len(need)} rotation keys ({ctx.key_policy}) in {time.perf_counter() - t0:.1f} s", flush=True)
    all_ops = [o for p in plans.values() for ph in PHASES for o in p[ph]]
    todo = distinct(all_ops)
    counts = collections.Counter(signature(o) for o in all_ops)
    tm = Timings()
    if args.resume and os.path.exists(args.json):
        print(f"resumed: {tm.reuse(args.json, todo, resume=True)} operations already timed in {args.json}", flush=True)
    for path in args.merge or []:
        print(f"merged: {tm.reuse(path, todo, resume=True)} operations timed by the shard {path}", flush=True)
    for path in args.reuse or []:
        print(f"reused {tm.reuse(path, todo)} timed operations from {path}", flush=True)
    k, n = parse_shard(args.shard)
    if n > 1:  # every n-th of what is left, costliest kinds first, so the shards' costs stay alike
        left = [t for t in todo if t[0] not in tm.times]
        mine = {sig for sig, _ in left[k::n]}
        todo_run = [t for t in todo if t[0] in tm.times or t[0] in mine]
        print(f"shard {k}/{n}: {len(mine)} of the {len(left)} operations left to time", flush=True)
    else:
        todo_run = todo
    if args.only:
        kinds, planned = set(args.only.split(",")), {sig[0] for sig, _ in todo}
        if not kinds <= planned:
            raise ValueError(f"--only {args.only!r}: no operation of kind {sorted(kinds - planned)} in the plan; "
                             f"its kinds are {sorted(planned)}")
        todo_run = [t for t in todo_run if t[0][0] in kinds]
    ctx.auto_keys = True  # a replayed operand's layout may differ from the plan's in a way that needs a key
    errors: Dict[Tuple, str] = {}

    def dump() -> None:  # what is timed so far survives a kill (the OOM killer, a deadline): --resume
        if args.json:
            write_json(args.json, dict(record, ops=tm.ops_json(), errors={repr(s): e for s, e in errors.items()}))

    print(f"{len(todo)} distinct operations ({len(tm.reused)} reused, {len(tm.resumed)} timed before the resume), "
          f"timing the rest within {args.budget:.0f} s",
          flush=True)
    boots = [t for t in todo_run if t[0][0] == "bootstrap"]
    spent = tm.run(ctx, boots, args.budget, counts.__getitem__, dump, errors=errors)
    if tm.drop_boot_transforms(ctx, todo_run):
        print("every bootstrap timed or reused: dropped the bootstrapping transforms for the timing pass", flush=True)
    tm.run(ctx, [t for t in todo_run if t[0][0] != "bootstrap"], args.budget - spent, counts.__getitem__, dump,
           errors=errors)
    kinds = list(plans)
    for kind in kinds:
        s = summarize(kind, plans[kind], tm, errors)
        record["kinds"][kind].update(s)
        print(f"\n[{kind}] one training step at {args.preset}, {args.tokens} tokens: {s['seconds']:.1f} s "
              f"({s['cpu_seconds']:.1f} s CPU) summed over {sum(len(plans[kind][p]) for p in PHASES)} planned "
              f"operations{'' if s['complete'] else ' (INCOMPLETE: some not timed)'}")
        for ph in PHASES:
            d = s["phases"][ph]
            print(f"  {ph:<9} {d['seconds']:9.1f} s {d['cpu_seconds']:9.1f} s CPU")
            for c, v in sorted(d["classes"].items(), key=lambda kv: -kv[1]):
                print(f"      {c:<36} {v:9.1f} s {d['classes_cpu'][c]:9.1f} s CPU")
        if s["not_timed"]:
            print(f"  not timed: {s['not_timed']} ({len(s['untimed_signatures'])} distinct; reasons: "
                  f"{sorted(set(u['reason'] for u in s['untimed_signatures']))})")
    ratios = {}
    if "gk" in kinds:
        g = record["kinds"]["gk"]
        for k in kinds:
            if k != "gk" and record["kinds"][k].get("seconds"):
                r = record["kinds"][k]
                ratios[f"{k} / gk"] = dict(seconds=r["seconds"] / g["seconds"],
                                           cpu_seconds=r["cpu_seconds"] / g["cpu_seconds"],
                                           complete=bool(r["complete"] and g["complete"]))
                print(f"{k} / gk step time: {r['seconds'] / g['seconds']:.2f}x wall, "
                      f"{r['cpu_seconds'] / g['cpu_seconds']:.2f}x CPU"
                      f"{'' if ratios[f'{k} / gk']['complete'] else ' (some operations not timed)'}")
    record["ratios"] = ratios
    record["ops"] = tm.ops_json()
    record["errors"] = {repr(s): e for s, e in errors.items()}
    record["timed_now"] = len(tm.times) - len(tm.reused) - len(tm.resumed)


if __name__ == "__main__":
    main()
