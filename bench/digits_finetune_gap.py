"""Where the digits LoRA gap between PyTorch and hetensor plain mode comes from.

Same pre-trained model, same LoRA fine-tuning (rank 4 on q, k, v, AdamW lr 1e-2,
batches of 64, 3 epochs), changing one thing at a time:

1. PyTorch over several shuffle seeds (the spread that batch order alone gives);
2. PyTorch on hetensor's Trainer batch order (numpy permutations), torch's AdamW;
3. the same with AdamW's eps inside the root (eps 1e-5, hetensor's and the paper's form);
4. hetensor plain mode on that batch order (the polynomial model, its backward, AdamW):
   what is left between 3 and 4 is the polynomial approximations.

    python bench/digits_finetune_gap.py --depth 8 --json bench/results-digits-finetune-gap.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math

import numpy as np
import torch

import hetensor.nn as hnn
import hetensor.optim as hopt
from hetensor.examples import digits_finetune as dft
from hetensor.examples.digits import load_digits_tokens


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return float(np.mean(model(torch.from_numpy(x)).numpy().argmax(1) == y))


def torch_lora(twin, x, y, batches, lr, eps_inside: float = 0.0):
    """LoRA fine-tuning on the given batch index lists; eps_inside > 0: AdamW with
    p -= lr m_hat / sqrt(v_hat + eps) (decoupled weight decay 1e-4, betas 0.9, 0.999)."""
    m = copy.deepcopy(twin)
    params = list(m.lora_parameters())
    for p in params:
        p.requires_grad_(True)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    opt = None if eps_inside else torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    m.train()
    for t, idx in enumerate(batches, 1):
        loss = torch.nn.functional.cross_entropy(m(xt[idx]), yt[idx])
        for p in params:
            p.grad = None
        loss.backward()
        if opt is not None:
            opt.step()
            continue
        with torch.no_grad():
            for p, (mm, vv) in zip(params, state):
                p.mul_(1 - lr * 1e-4)
                mm.mul_(0.9).add_(p.grad, alpha=0.1)
                vv.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                p.sub_(lr * (mm / (1 - 0.9 ** t)) / torch.sqrt(vv / (1 - 0.999 ** t) + eps_inside))
    m.eval()
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=8, help="levels per polynomial of the hetensor model")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lora-epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    lr, bs, seed = 1e-2, 64, 0
    x_tr, y_tr, x_te, y_te = load_digits_tokens(seed)
    twin = dft.pretrain(dft.mirror(x_tr), y_tr, epochs=args.epochs, rank=4, seed=seed)
    out = {"before": _acc(twin, x_te, y_te)}
    spread = [_acc(dft.lora_torch(twin, x_tr, y_tr, epochs=args.lora_epochs, lr=lr, bs=bs, seed=s), x_te, y_te)
              for s in range(args.seeds)]
    out["torch_seeds"] = spread
    # hetensor's Trainer order: np.random.default_rng(seed + 2).permutation per epoch (as the example runs it)
    rng = np.random.default_rng(seed + 2)
    batches = []
    for _ in range(args.lora_epochs):
        perm = rng.permutation(len(x_tr))
        batches += [perm[i:i + bs] for i in range(0, len(x_tr), bs)]
    out["torch_trainer_order"] = _acc(torch_lora(twin, x_tr, y_tr, batches, lr), x_te, y_te)
    out["torch_trainer_order_eps_inside"] = _acc(torch_lora(twin, x_tr, y_tr, batches, lr, eps_inside=1e-5),
                                                 x_te, y_te)
    model = hnn.from_torch(twin, calibration=np.concatenate([x_tr, dft.mirror(x_tr)]), max_depth=args.depth)
    loss_fn = hnn.CrossEntropyLoss(max_depth=args.depth)
    hnn.calibrate_training(model, x_tr, y_tr, loss_fn, batch_size=bs, epochs=args.lora_epochs, seed=seed + 1,
                           optimizer=lambda ps: hopt.AdamW(ps, lr=lr, eps=1e-5, weight_decay=1e-4,
                                                           max_depth=args.depth))
    tr = hnn.Trainer(model, hopt.AdamW(model.lora_parameters(), lr=lr, eps=1e-5, weight_decay=1e-4,
                                       max_depth=args.depth), loss_fn, mode="plain", seed=seed + 2, progress=False)
    tr.fit(x_tr, y_tr, epochs=args.lora_epochs, batch_size=bs)
    out["hetensor_plain_trainer_order"] = float(np.mean(model(x_te).argmax(1) == y_te))
    out["depth"] = args.depth
    print(f"before fine-tuning: {out['before'] * 100:.2f}%")
    print(f"PyTorch, {args.seeds} shuffle seeds: " + ", ".join(f"{a * 100:.2f}" for a in spread)
          + f"  (mean {np.mean(spread) * 100:.2f}, sd {np.std(spread) * 100:.2f})")
    for k in ("torch_trainer_order", "torch_trainer_order_eps_inside", "hetensor_plain_trainer_order"):
        print(f"{k}: {out[k] * 100:.2f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
