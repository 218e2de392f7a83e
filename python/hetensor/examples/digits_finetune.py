"""LoRA fine-tuning of a small transformer on scikit-learn's digits: PyTorch, plain,
simulate and encrypted.

Domain shift: the model is pre-trained in PyTorch on *mirrored* digits (each
8x8 image is 8 tokens of 8 pixels; the source task reverses the pixels of
every token), frozen, and then only LoRA adapters (rank ``--rank`` on q, k, v)
are fine-tuned on the original digits. Reported: accuracy on the original test
split before fine-tuning, after LoRA fine-tuning in PyTorch, and after the same
fine-tuning with hetensor in plain mode (the polynomials in float64), simulate
mode (plus the context's levels, bootstraps and measured noise) and encrypted
mode. The encrypted run is ``--encrypted-steps`` steps on batches packed in
the slots; it is compared step by step with plain mode on the same batches,
its adapters are then decrypted and the model's test accuracy is reported
beside plain mode's after the same steps, and the full run's time is
projected from the measured step time.

    python -m hetensor.examples.digits_finetune                  # PyTorch and plain mode (n16-boot's 8 levels)
    python -m hetensor.examples.digits_finetune --simulate 1 --encrypted-steps 2   # n12-boot9-insecure

The default preset, n12-boot9-insecure, is n16-boot's chain (9 levels between
bootstraps, so 8 per polynomial) at N = 2^12: the same polynomial model as
n16-boot in seconds per step, insecure. toy-boot-insecure's 3 levels per
polynomial are too few for this model (its low-degree fits drift out of their
ranges while the adapters train).

No download: the digits ship with scikit-learn.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from typing import Any, Dict, List

import numpy as np

from .digits import load_digits_tokens


def mirror(x: np.ndarray) -> np.ndarray:
    """The source task: every token's pixels reversed."""
    return np.ascontiguousarray(x[:, :, ::-1])


def pretrain(x: np.ndarray, y: np.ndarray, *, epochs: int, rank: int, seed: int = 0) -> Any:
    """A hetensor.torch classifier trained on the source task, every weight but the adapters."""
    import torch

    from .. import torch as htt

    torch.manual_seed(seed)
    model = htt.TransformerClassifier(8, 16, 2, 32, 1, 10, 8, lora_rank=rank, activation="gelu").double()
    for m in model.modules():
        if isinstance(m, htt.LoRALinear):
            m.freeze_base(False)
    _fit_torch(model, [p for n, p in model.named_parameters() if "lora_" not in n], x, y, epochs, 3e-3, 64, seed)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def _fit_torch(model: Any, params: List[Any], x: np.ndarray, y: np.ndarray, epochs: int, lr: float, bs: int,
               seed: int) -> None:
    import torch

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), bs):
            idx = perm[i:i + bs]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def lora_torch(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, bs: int, seed: int) -> Any:
    """PyTorch LoRA fine-tuning of a copy (the adapters only)."""
    m = copy.deepcopy(model)
    for p in m.lora_parameters():
        p.requires_grad_(True)
    _fit_torch(m, m.lora_parameters(), x, y, epochs, lr, bs, seed)
    return m


def _acc_torch(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    with torch.no_grad():
        return float(np.mean(model(torch.from_numpy(x)).numpy().argmax(1) == y))


def main(argv: Any = None) -> Dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="n12-boot9-insecure",
                    help="bootstrapping preset of simulate/encrypted mode (n16-boot: secure, ~14 GB of keys)")
    ap.add_argument("--epochs", type=int, default=30, help="pre-training epochs (source task, PyTorch)")
    ap.add_argument("--lora-epochs", type=int, default=10, help="LoRA fine-tuning epochs (PyTorch, plain, simulate)")
    ap.add_argument("--rank", type=int, default=4, help="LoRA rank on q, k, v")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--batch", type=int, default=64, help="batch size of the plaintext runs")
    ap.add_argument("--simulate", type=int, default=0, help="1: also fine-tune in simulate mode (on --preset)")
    ap.add_argument("--encrypted-steps", type=int, default=0, help="encrypted fine-tuning steps on --preset (0: none)")
    ap.add_argument("--max-depth", type=int, default=0,
                    help="levels per polynomial (0: the preset's fresh level - 1 with simulate or encrypted steps, "
                         "else 8: n16-boot's budget)")
    ap.add_argument("--out", default="", help="directory for the PNG plot and the JSON record (default: none)")
    ap.add_argument("--limit", type=int, default=0, help="fine-tune on the first LIMIT training images (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    import hetensor as ht
    import hetensor.nn as hnn
    import hetensor.optim as hopt

    if args.threads:
        ht.set_num_threads(args.threads)
    x_tr, y_tr, x_te, y_te = load_digits_tokens(args.seed)
    t0 = time.perf_counter()
    twin = pretrain(mirror(x_tr), y_tr, epochs=args.epochs, rank=args.rank, seed=args.seed)
    rows = [("source task (mirrored), PyTorch", _acc_torch(twin, mirror(x_te), y_te))]
    rows.append(("before fine-tuning, PyTorch", _acc_torch(twin, x_te, y_te)))
    print(f"pre-trained on mirrored digits in {time.perf_counter() - t0:.0f} s")
    if args.limit:
        x_tr, y_tr = x_tr[:args.limit], y_tr[:args.limit]
    t0 = time.perf_counter()
    tuned = lora_torch(twin, x_tr, y_tr, epochs=args.lora_epochs, lr=args.lr, bs=args.batch, seed=args.seed)
    rows.append((f"LoRA fine-tuned, PyTorch ({args.lora_epochs} epochs)", _acc_torch(tuned, x_te, y_te)))
    print(f"PyTorch LoRA fine-tuning: {time.perf_counter() - t0:.0f} s")

    ctx = None
    need_ctx = args.simulate or args.encrypted_steps
    if need_ctx:
        ctx = ht.Context.from_preset(args.preset, bootstrap=True)
    depth = args.max_depth or (ctx.usable_levels - 1 if ctx is not None else 8)

    def fresh_model() -> Any:
        # calibrated on both tasks' inputs: the fine-tuned activations lie between them
        return hnn.from_torch(twin, calibration=np.concatenate([x_tr, mirror(x_tr)]), max_depth=depth)

    loss_fn = hnn.CrossEntropyLoss(max_depth=depth)
    model = fresh_model()
    rows.append((f"before fine-tuning, plain ({depth} levels per polynomial)",
                 float(np.mean(model(x_te).argmax(1) == y_te))))

    def adamw(params: Any) -> Any:
        return hopt.AdamW(params, lr=args.lr, eps=1e-5, weight_decay=1e-4, max_depth=depth)

    t0 = time.perf_counter()
    hnn.calibrate_training(model, x_tr, y_tr, loss_fn, batch_size=args.batch, optimizer=adamw,
                           epochs=args.lora_epochs, seed=args.seed + 1)
    ranges = model.state_dict()
    print(f"backward calibration (a plain training run): {time.perf_counter() - t0:.0f} s")
    histories: Dict[str, List[Dict[str, Any]]] = {}
    per_epoch = math.ceil(len(x_tr) / args.batch)
    eval_every = per_epoch

    def finetune(mode: str, m: Any) -> Any:
        tr = hnn.Trainer(m, adamw(m.lora_parameters()), loss_fn, mode=mode, ctx=ctx, seed=args.seed + 2)
        t = time.perf_counter()
        tr.fit(x_tr, y_tr, epochs=args.lora_epochs, batch_size=args.batch, eval_data=(x_te, y_te),
               eval_every=eval_every)
        histories[mode] = tr.history
        print(f"{mode} fine-tuning: {time.perf_counter() - t:.0f} s, {len(tr.history)} steps")
        return tr

    tp = finetune("plain", model)
    rows.append((f"LoRA fine-tuned, hetensor plain ({args.lora_epochs} epochs)", tp.history[-1]["accuracy"]))
    if args.simulate:
        ms = fresh_model()
        ms.load_state_dict(ranges, strict=False)
        ts = finetune("simulate", ms)
        rows.append((f"LoRA fine-tuned, hetensor simulate ({args.preset})", ts.history[-1]["accuracy"]))

    record: Dict[str, Any] = dict(rows=rows, preset=args.preset, depth=depth, rank=args.rank)
    if args.encrypted_steps:
        slots = ctx.slots
        from .digits import batch_for

        B = batch_for(slots, 8)
        me = fresh_model()
        me.load_state_dict(ranges, strict=False)
        mp = fresh_model()
        mp.load_state_dict(ranges, strict=False)
        hnn.encrypt_adapters(me, ctx)
        te = hnn.Trainer(me, adamw(me.lora_parameters()), loss_fn, mode="encrypted", ctx=ctx, seed=args.seed + 3)
        tq = hnn.Trainer(mp, adamw(mp.lora_parameters()), loss_fn, mode="plain", seed=args.seed + 3, progress=False)
        te.fit(x_tr, y_tr, steps=args.encrypted_steps, batch_size=B)
        tq.fit(x_tr, y_tr, steps=args.encrypted_steps, batch_size=B)
        histories["encrypted"] = te.history
        histories[f"plain, batches of {B}"] = tq.history
        enc = [ctx.decrypt(p.data).T / p.scale for p in me.lora_parameters()]
        pl = [p.data for p in mp.lora_parameters()]
        start = [p.data for p in fresh_model().lora_parameters()]
        moved = max(float(np.max(np.abs(b - s))) for b, s in zip(pl, start))
        err = max(float(np.max(np.abs(a - b))) for a, b in zip(enc, pl))
        bits = -math.log2(max(err, 1e-300) / max(moved, 1e-300))
        # the test accuracy the encrypted training reached: its adapters decrypted (the user's side),
        # the model evaluated in plain mode; against the plain run on the same batches
        hnn.decrypt_adapters(me, ctx)
        acc_e = float(np.mean(me(x_te).argmax(1) == y_te))
        acc_q = float(np.mean(mp(x_te).argmax(1) == y_te))
        rows.append((f"after {args.encrypted_steps} encrypted step(s) of {B} sequences (adapters decrypted)", acc_e))
        rows.append((f"after the same {args.encrypted_steps} step(s), hetensor plain", acc_q))
        step_s = float(np.mean([r["seconds"] for r in te.history]))
        total = args.lora_epochs * math.ceil(len(x_tr) / B)
        print(f"encrypted: {args.encrypted_steps} step(s) of {B} sequences, {step_s:.0f} s per step "
              f"({te.history[-1]['bootstraps']} bootstraps in the last); adapters vs plain on the same batches: "
              f"{bits:.1f} bits of the update; loss {te.history[-1]['loss']:.4f} vs plain {tq.history[-1]['loss']:.4f}")
        print(f"projection: {args.lora_epochs} epochs = {total} steps of {B} sequences = {total * step_s / 3600:.1f} h "
              f"on this machine (one process)")
        record.update(encrypted_steps=args.encrypted_steps, encrypted_batch=B, encrypted_step_seconds=step_s,
                      encrypted_accuracy=acc_e, plain_same_batches_accuracy=acc_q,
                      encrypted_update_bits=bits, projected_hours=total * step_s / 3600, projected_steps=total)
    print(f"\nscikit-learn digits, LoRA rank {args.rank} on q, k, v; test split of {len(y_te)} images")
    for name, acc in rows:
        print(f"  {name:<58} {acc * 100:6.2f}%")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        hnn.plot_history(histories, os.path.join(args.out, "digits_finetune.png"),
                         title=f"digits LoRA fine-tuning ({depth} levels per polynomial"
                               + (f", {args.preset})" if ctx is not None else ")"))
        with open(os.path.join(args.out, "digits_finetune.json"), "w") as f:
            json.dump(dict(record, histories=histories), f, indent=1, default=float)
    record["histories"] = histories
    return record


if __name__ == "__main__":
    main()
