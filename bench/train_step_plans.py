"""One encrypted fine-tuning step of the digits transformer, planned with dense against
per-sequence attention (issue 12): bootstraps and operations of the forward (training
mode), the cross-entropy backward and the AdamW update, per batch of sequences.

The model is the digits fine-tuning example's (hetensor.examples.digits_finetune: one
encoder layer, width 16, 2 heads, LoRA rank 4 on q, k, v, pre-trained briefly in PyTorch);
each form is calibrated for training in plain mode at the batch size, its adapters are
encrypted, and the whole step runs on ghost tensors (hetensor.nn.plan: shapes, layouts and
levels, no data). The placement is just in time, as in Trainer.fit.

    python bench/train_step_plans.py                                  # n12-boot9-insecure, batches 2 and 16
    python bench/train_step_plans.py --preset toy-boot-insecure --batches 2,4,16
"""

from __future__ import annotations

import argparse
import collections
import copy
import time
from typing import Any, Dict

import numpy as np


def plan_step(model: Any, ctx: Any, x: np.ndarray, y: np.ndarray, loss: Any, opt: Any) -> Dict[str, Any]:
    """Forward (training), the backward of ``loss`` (a criterion: labels ``y``) and AdamW
    of ``model`` on ghosts of ``x``."""
    from hetensor.linalg import runmode as rm
    from hetensor.nn.autograd import backward_module, parameters
    from hetensor.nn.backward import Ops
    from hetensor.nn.plan import GhostArray, Recorder, _ghost_input, trace_modules
    from hetensor.nn.run import Run
    from hetensor.nn.tape import Tape

    batch, seq_len, d = x.shape
    rec = Recorder()
    run = Run(model, "plan", ctx=ctx, batch=batch, seq_len=seq_len)
    run.tape = Tape()
    trace_modules(run, rec)
    marks = {}
    out = run.call(model, _ghost_input(ctx, batch * seq_len, d, rec))
    marks["forward"] = (0, len(rec.ops), len(run.bootstraps), run.circuits)
    rec.where.append("loss+backward")
    backward_module(model, loss.gradient(out, y, run), run)  # plaintext labels
    rec.where.pop()
    marks["backward"] = (marks["forward"][1], len(rec.ops), len(run.bootstraps), run.circuits)
    rec.where.append("AdamW")
    for p in parameters(model):
        w = GhostArray(rm.GhostTensor.like(p.data), rec)
        new = opt.update(p, w, p.grad_tensor, {}, 1e-3, run)
        top = ctx.fresh_level - run.reserve
        if new.level < top + run.reserve:  # the updated weight goes back to the top level (Optimizer.step)
            Ops(run, p.module, "opt.").ready([(new, top, p.name + ".fresh", 1.0)])
    rec.where.pop()
    marks["optimizer"] = (marks["backward"][1], len(rec.ops), len(run.bootstraps), run.circuits)
    res: Dict[str, Any] = dict(circuits=run.circuits, refreshed=len(run.bootstraps))
    prev = 0
    for phase, (a, b, _, circ) in marks.items():
        ops = rec.ops[a:b]
        cnt = collections.Counter(o["kind"] for o in ops if o["kind"] != "bootstrap")
        res[phase] = dict(circuits=circ - prev, ops=dict(sorted(cnt.items())))
        prev = circ
    res["refreshes"] = [(b["module"], b["site"], b["level"], b.get("cts", 1)) for b in run.bootstraps]
    return res


def main(argv: Any = None) -> Dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="n12-boot9-insecure")
    ap.add_argument("--batches", default="2,16")
    ap.add_argument("--calibration", type=int, default=64, help="training images of the plain calibration pass")
    ap.add_argument("--refreshes", action="store_true", help="list every refreshed tensor (module, site, level, cts)")
    args = ap.parse_args(argv)

    import hetensor as ht
    import hetensor.nn as hnn
    import hetensor.optim as hopt
    from hetensor.examples.digits import load_digits_tokens
    from hetensor.examples.digits_finetune import mirror, pretrain

    x_tr, y_tr, _, _ = load_digits_tokens(0)
    twin = pretrain(mirror(x_tr), y_tr, epochs=2, rank=4)
    ctx = ht.Context.from_preset(args.preset, bootstrap=True, seed=1)
    depth = ctx.usable_levels - 1
    base = hnn.from_torch(twin, calibration=np.concatenate([x_tr, mirror(x_tr)]), max_depth=depth)
    out: Dict[str, Any] = {}
    for B in (int(b) for b in args.batches.split(",")):
        for per in (False, True):
            t0 = time.perf_counter()
            model = copy.deepcopy(base)
            for m in model.modules():
                if isinstance(m, (hnn.GaussianKernelAttention, hnn.SoftmaxAttention)):
                    m.per_sequence = per
            loss_fn = hnn.CrossEntropyLoss(max_depth=depth)

            def adamw(ps: Any) -> Any:
                return hopt.AdamW(ps, lr=1e-2, eps=1e-5, weight_decay=1e-4, max_depth=depth)

            n = max(args.calibration, 2 * B)
            hnn.calibrate_training(model, x_tr[:n], y_tr[:n], loss_fn, batch_size=B, optimizer=adamw)
            hnn.encrypt_adapters(model, ctx)
            model.train()
            res = plan_step(model, ctx, x_tr[:B], y_tr[:B], loss_fn, adamw(model.lora_parameters()))
            form = "per-sequence" if per else "dense"
            out[f"B={B} {form}"] = res
            print(f"{args.preset} B={B:3d} {form:<12}: {res['circuits']:4d} bootstrap circuits (forward "
                  f"{res['forward']['circuits']}, backward {res['backward']['circuits']}, AdamW "
                  f"{res['optimizer']['circuits']}), "
                  f"plan {time.perf_counter() - t0:.1f} s", flush=True)
            for phase in ("forward", "backward", "optimizer"):
                print(f"    {phase:<9} {res[phase]['ops']}")
            if args.refreshes:
                for r in res["refreshes"]:
                    print("      refresh", *r)
    return out


if __name__ == "__main__":
    main()
