"""Encrypted inference of a small HE-friendly transformer on scikit-learn's digits.

Each 8x8 image is a sequence of 8 tokens (its rows) of 8 features. A one-layer
transformer with Gaussian-kernel attention and LoRA adapters on q, k, v is
trained in PyTorch (``hetensor.torch``), converted with
``hetensor.nn.from_torch`` and run on the test split in four ways: torch
exact, plain (the polynomials in float64), simulate (plus measured CKKS noise)
and encrypted. A batch of sequences shares the slots of each ciphertext (at
n16-boot the whole test split fits one forward).

    python -m hetensor.examples.digits                      # toy ring, a few encrypted samples
    python -m hetensor.examples.digits --preset n16-boot --encrypted -1   # the whole split: one forward

No download: the digits ship with scikit-learn.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any, Dict, List, Tuple

import numpy as np


def load_digits_tokens(seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images as (n, 8 tokens, 8 features) in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float64) / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)
    return x_tr, y_tr, x_te, y_te


def train(x: np.ndarray, y: np.ndarray, *, epochs: int = 60, lora_epochs: int = 20, seed: int = 0,
          d_model: int = 16, n_heads: int = 2, d_ff: int = 32, lora_rank: int = 2) -> Any:
    """Pre-train the whole model, then fine-tune only the LoRA adapters (base frozen)."""
    import torch

    from .. import torch as htt

    torch.manual_seed(seed)
    model = htt.TransformerClassifier(8, d_model, n_heads, d_ff, 1, 10, 8, lora_rank=lora_rank,
                                      activation="gelu").double()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()

    def fit(params: List[Any], n: int, lr: float) -> None:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        g = torch.Generator().manual_seed(seed)
        for _ in range(n):
            perm = torch.randperm(len(xt), generator=g)
            for i in range(0, len(xt), 64):
                idx = perm[i:i + 64]
                loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    for m in model.modules():  # pre-training: every weight
        if isinstance(m, htt.LoRALinear):
            m.freeze_base(False)
    fit([p for n, p in model.named_parameters() if "lora_" not in n], epochs, 3e-3)
    for m in model.modules():  # fine-tuning: the adapters only
        if isinstance(m, htt.LoRALinear):
            m.freeze_base(True)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.lora_parameters():
        p.requires_grad_(True)
    fit(model.lora_parameters(), lora_epochs, 1e-3)
    return model.eval()


#: Largest encrypted training batch: the plaintext runs' batch size (digits_finetune --batch).
TRAIN_BATCH_CAP = 64


def batch_for(slots: int, seq_len: int) -> int:
    """Training batches: packed like inference (:func:`inference_batch_for`: training runs
    per-sequence attention too, so nothing grows with the square of the batch), at most
    :data:`TRAIN_BATCH_CAP` sequences: 32 at n12-boot9-insecure, 64 at n16-boot (the dense
    score matrix of earlier versions allowed 4 and 16)."""
    return max(1, min(inference_batch_for(slots, seq_len), TRAIN_BATCH_CAP))


def inference_batch_for(slots: int, seq_len: int) -> int:
    """Inference batches: the most sequences whose tokens fill at most slots / 8 rows.
    Attention scores each token within its own sequence ((tokens, seq_len * heads)
    scores), so nothing grows with the square of the batch; a 16-wide activation then
    takes 2 ciphertexts, which share one complex-packed bootstrap. At n16-boot: 512
    sequences, the whole test split (450) in one forward."""
    return max(1, slots // (8 * seq_len))


def main(argv: Any = None, ctx: Any = None) -> Dict[str, Any]:
    """Run the example (``argv``: its command line); ``ctx``: a context of ``--preset``
    with bootstrapping keys already made (a script that runs several secure-size
    jobs makes it once)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="toy-boot-insecure", help="bootstrapping preset (n16-boot: 128-bit secure)")
    ap.add_argument("--encrypted", type=int, default=4, help="test samples to run encrypted (0: none, -1: all)")
    ap.add_argument("--simulated", type=int, default=-1, help="test samples to simulate (-1: all)")
    ap.add_argument("--epochs", type=int, default=60, help="pre-training epochs (all weights)")
    ap.add_argument("--lora-epochs", type=int, default=20, help="fine-tuning epochs (the LoRA adapters only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="stop the encrypted batches after this many seconds of the run (0: none)")
    ap.add_argument("--key-policy", default="auto", choices=["auto", "exact", "few", "power-of-two"],
                    help="rotation keys of the products (auto: the fastest whose keys fit --key-budget)")
    ap.add_argument("--key-budget", type=float, default=4.0, help="GiB for new rotation keys (auto policy)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: the default)")
    ap.add_argument("--json", default="", help="write the table and the encrypted forwards' record here")
    ap.add_argument("--max-depth", type=int, default=0,
                    help="levels per polynomial (0: the preset's fresh level - 1); with --encrypted 0 "
                         "--simulated 0 no context is made (plain mode predicts a preset's accuracy)")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    import torch

    import hetensor as ht
    import hetensor.nn as hnn

    if args.threads:
        ht.set_num_threads(args.threads)
    x_tr, y_tr, x_te, y_te = load_digits_tokens(args.seed)
    t0 = time.perf_counter()
    tmodel = train(x_tr, y_tr, epochs=args.epochs, lora_epochs=args.lora_epochs, seed=args.seed)
    print(f"trained in PyTorch in {time.perf_counter() - t0:.1f} s: {tmodel.__class__.__name__}, "
          f"{sum(p.numel() for p in tmodel.parameters())} parameters, LoRA rank 2 on q, k, v")
    rows = []
    with torch.no_grad():
        t0 = time.perf_counter()
        exact = tmodel(torch.from_numpy(x_te)).numpy()
        rows.append(("torch exact", len(y_te), _acc(exact, y_te), (time.perf_counter() - t0), "-", "-"))

    if args.encrypted == 0 and args.simulated == 0 and args.max_depth:
        model = hnn.from_torch(tmodel, calibration=x_tr, max_depth=args.max_depth)
        t0 = time.perf_counter()
        plain = model(x_te)
        rows.append((f"plain, max_depth {args.max_depth}", len(y_te), _acc(plain, y_te), time.perf_counter() - t0,
                     "-", "-"))
        print(f"  plain vs exact logits: max |diff| {np.max(np.abs(plain - exact)):.2e}")
        _table(rows, len(y_te), f"none (plain mode with {args.max_depth} levels per polynomial)")
        return dict(rows=rows)
    print(f"context {args.preset} (bootstrapping keys) ...", flush=True)
    t0 = time.perf_counter()
    ctx = ctx if ctx is not None else ht.Context.from_preset(args.preset, bootstrap=True)
    print(f"  {time.perf_counter() - t0:.1f} s: {ctx.describe()}")
    if ctx.usable_levels - 1 < 8:
        print(f"  note: {ctx.usable_levels} levels between bootstraps leave {ctx.usable_levels - 1} per polynomial: "
              f"low degrees, so plain accuracy drops (n16-boot has 9)")
    model = hnn.from_torch(tmodel, calibration=x_tr, max_depth=args.max_depth or ctx.usable_levels - 1)
    t0 = time.perf_counter()
    plain = model(x_te)
    rows.append(("plain (polynomials)", len(y_te), _acc(plain, y_te), time.perf_counter() - t0, "-", "-"))
    print(f"  plain vs exact logits: max |diff| {np.max(np.abs(plain - exact)):.2e}")

    B = inference_batch_for(ctx.slots, 8)
    record: Dict[str, Any] = {}
    ns = len(y_te) if args.simulated < 0 else min(args.simulated, len(y_te))
    if ns:
        t0 = time.perf_counter()
        sim = np.concatenate([model.simulate(x_te[i:i + B], ctx) for i in range(0, ns, B)])
        run = model.last_run
        per = (time.perf_counter() - t0) / math.ceil(ns / B)
        rows.append((f"simulate (batches of {B})", ns, _acc(sim, y_te[:ns]), per, _levels(run), run.circuits))
        print(f"  simulate vs plain logits: max |diff| {np.max(np.abs(sim - plain[:ns])):.2e}")

    ne = len(y_te) if args.encrypted < 0 else min(args.encrypted, len(y_te))
    if ne:
        print(f"compiling for batches of {B} sequences (one encrypted forward) ...", flush=True)
        first = x_te[:min(B, ne)]
        rep = model.compile(ctx, first, progress=True, key_policy=args.key_policy,
                            key_budget=int(args.key_budget * 2**30))
        print(f"  {rep}")
        outs = [ctx.decrypt(rep.output)]
        times = [rep.seconds]
        _batch_line(0, first, outs[-1], plain, exact, y_te, times[-1], model.last_run)
        for i in range(B, ne, B):
            # stop before a batch that would end past the deadline (the last batch's time predicts it)
            if args.deadline and time.perf_counter() - started + times[-1] > args.deadline:
                print(f"  deadline: stopped after {i} encrypted samples", flush=True)
                ne = i
                break
            xb = x_te[i:min(i + B, ne)]
            if len(xb) < len(first):  # the compiled shape (its keys): pad with real images, drop their outputs
                xb = np.concatenate([xb, x_te[:len(first) - len(xb)]])
            ct, _ = hnn.encrypt_tokens(ctx, xb)
            t0 = time.perf_counter()
            outs.append(ctx.decrypt(model(ct, progress=True))[:min(B, ne - i)])
            times.append(time.perf_counter() - t0)
            _batch_line(i, x_te[i:min(i + B, ne)], outs[-1], plain, exact, y_te, times[-1], model.last_run)
        enc = np.concatenate(outs)[:ne]
        run = model.last_run
        record.update(batch=B, forwards=len(times), seconds_per_forward=times, circuits_per_forward=run.circuits,
                      tensors_refreshed=len(run.bootstraps), levels=_levels(run), compile=str(rep))
        rows.append((f"encrypted (batches of {B})", ne, _acc(enc, y_te[:ne]), float(np.mean(times)), _levels(run),
                     run.circuits))
        bits = -math.log2(max(np.max(np.abs(enc - plain[:ne])), 1e-300) / np.max(np.abs(plain[:ne])))
        print(f"  encrypted vs plain logits: max |diff| {np.max(np.abs(enc - plain[:ne])):.2e} ({bits:.1f} bits)")
        print(f"  agreement of encrypted and exact predictions: "
              f"{np.mean(enc.argmax(1) == exact[:ne].argmax(1)) * 100:.1f}%")
        print(model.profile())
        record.update(bits_vs_plain=bits, agreement_with_exact=float(np.mean(enc.argmax(1) == exact[:ne].argmax(1))),
                      profile=model.profile())

    _table(rows, len(y_te), args.preset)
    record.update(rows=rows, preset=args.preset, test_images=len(y_te))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(record, f, indent=1, default=str)
    return dict(rows=rows)


def _batch_line(i: int, xb: np.ndarray, enc: np.ndarray, plain: np.ndarray, exact: np.ndarray, y: np.ndarray,
                sec: float, run: Any) -> None:
    """One line per encrypted batch (flushed: a long run that is stopped keeps what it did)."""
    j = i + len(xb)
    enc = enc[:len(xb)]
    err = float(np.max(np.abs(enc - plain[i:j])))
    bits = -math.log2(max(err, 1e-300) / float(np.max(np.abs(plain[i:j]))))
    print(f"  batch {i}:{j}: {int(np.sum(enc.argmax(1) == y[i:j]))}/{j - i} right (exact {int(np.sum(exact[i:j].argmax(1) == y[i:j]))}, "
          f"plain {int(np.sum(plain[i:j].argmax(1) == y[i:j]))}), {bits:.1f} bits vs plain, {sec:.1f} s, "
          f"{run.circuits} bootstraps, levels {_levels(run)}", flush=True)


def _table(rows: List[tuple], n_test: int, preset: str) -> None:
    print(f"\nscikit-learn digits, test split ({n_test} images as 8 tokens x 8 features), preset {preset}")
    print(f"{'mode':<28} {'samples':>7} {'accuracy':>9} {'s/forward':>10} {'levels':>8} {'bootstraps':>10}")
    for name, n, acc, sec, lv, nb in rows:
        print(f"{name:<28} {n:>7} {acc * 100:>8.2f}% {sec:>10.2f} {lv:>8} {nb!s:>10}")


def _acc(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(logits).argmax(1) == y))


def _levels(run: Any) -> str:
    """Levels used: the fresh level minus the lowest level any module reached, per refresh."""
    lows = [e["level_out"] for e in run.profile if e.get("level_out", 1 << 30) < 1 << 29]
    return f"{run.profile[0]['level_in']}->{min(lows)}" if lows else "-"


if __name__ == "__main__":
    main()
