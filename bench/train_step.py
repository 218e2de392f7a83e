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

    python bench/train_step.py --preset n16-boot --kinds gk --json bench/results-train-step-plan-n16-boot.json
    python bench/train_step.py --preset n12-boot9-insecure --small --kinds gk,softmax,full-softmax   # a quick check

Kinds: ``gk``, ``softmax`` (LoRA rank 2 on q, k, v), ``full-softmax``, ``full-gk`` (the q, k, v
weights themselves train, encrypted: hetensor.nn.full_qkv).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Any, Dict, List

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
    from hetensor.nn.plan import GhostArray, Recorder, _ghost_input
    from hetensor.nn.run import Run
    from hetensor.nn.tape import Tape

    rec = Recorder()
    d = layer.attn.d_model
    x = _ghost_input(ctx, n_tokens, d, rec)
    run = Run(layer, "plan", ctx=ctx, batch=1, seq_len=n_tokens, key_mask=mask)
    run.tape = Tape()
    call = run.call

    def traced(module: Any, v: Any) -> Any:
        rec.where.append(run.name_of(module))
        try:
            return call(module, v)
        finally:
            rec.where.pop()

    run.call = traced  # type: ignore[method-assign]
    phases: Dict[str, List[Dict[str, Any]]] = {}
    y = run.call(layer, x)
    phases["forward"] = list(rec.ops)
    n0 = len(rec.ops)
    # the MSE gradient 2 (y - t) / numel with a plaintext target, then the layer's backward
    rec.where.append("loss")
    g = hnn.MSELoss()(np.zeros(y.shape), np.zeros(y.shape)).criterion.gradient(y, np.zeros(y.shape), run)
    rec.where.pop()
    rec.where.append("backward")
    backward_module(layer, g, run)
    rec.where.pop()
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
    phases["_bootstraps"] = list(run.bootstraps)  # type: ignore[assignment]
    phases["_circuits"] = run.circuits  # type: ignore[assignment]
    return phases


def main(argv: Any = None) -> Dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="n16-boot")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--kinds", default="gk")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)

    import hetensor.nn as hnn
    import hetensor.optim as hopt
    from hetensor.examples import minilm as M

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nn_minilm

    w = M.load_weights()
    ids, mask = M.tokenize(M.SENTENCES, args.tokens)
    x = M.embed(w, ids)
    if args.small:
        x = x[:, :, :16]
    t0 = time.perf_counter()
    ctx = planning_context(args.preset)
    print(f"planning context {args.preset} (no bootstrapping keys): {time.perf_counter() - t0:.1f} s", flush=True)
    depth = ctx.usable_levels - 1
    record: Dict[str, Any] = dict(preset=args.preset, tokens=args.tokens, kinds={})
    for kind in args.kinds.split(","):
        # "full-softmax" / "full-gk": the q, k, v weights train (encrypted, CCMM) instead of LoRA adapters
        att = kind[len("full-"):] if kind.startswith("full-") else kind
        layer = nn_minilm._small_layer(att) if args.small else M.encoder_layer(w, 0, attention=att)
        t0 = time.perf_counter()
        layer.calibrate(x, mask=mask, max_depth=depth)
        if att != kind:
            hnn.full_qkv(layer)
        target = np.random.default_rng(0).normal(0, 1, x.shape)
        opt_for = lambda ps: hopt.AdamW(ps, lr=1e-3, eps=1e-4, weight_decay=0.01, max_depth=depth)  # noqa: E731
        hnn.calibrate_training(layer, x, target, hnn.MSELoss(), batch_size=1, mask=mask, optimizer=opt_for)
        print(f"[{kind}] calibrated (forward, then a plain training pass) in {time.perf_counter() - t0:.1f} s",
              flush=True)
        hnn.encrypt_adapters(layer, ctx)
        t0 = time.perf_counter()
        try:
            phases = plan_step(layer, ctx, args.tokens, mask[:1], opt_for(layer.lora_parameters()))
        except ValueError as err:  # e.g. softmax on MiniLM's scores: 1/x of the row sums out of reach
            print(f"[{kind}] not planned: {err}", flush=True)
            record["kinds"][kind] = dict(error=str(err))
            continue
        print(f"[{kind}] planned one step in {time.perf_counter() - t0:.1f} s: {phases['_circuits']} bootstrap "
              f"circuits ({len(phases['_bootstraps'])} tensors refreshed)", flush=True)
        out: Dict[str, Any] = {}
        for name in ("forward", "backward", "optimizer"):
            ops = phases[name]
            cnt = collections.Counter(nn_minilm.classify(o) for o in ops)
            boots = sum(o["cts"] for o in ops if o["kind"] == "bootstrap")
            out[name] = dict(counts=dict(cnt), bootstrap_circuits=boots, ops=len(ops),
                             signatures=[list(map(str, nn_minilm.signature(o)[:4])) for o in ops])
            print(f"  {name:<9} {len(ops):5d} ops, {boots:4d} bootstrap circuits: {dict(cnt)}", flush=True)
        record["kinds"][kind] = out
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1, default=str)
    return record


if __name__ == "__main__":
    main()
