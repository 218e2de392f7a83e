"""Trainer: the fine-tuning loop of a hetensor.nn model in plain, simulate or encrypted mode.

One step is a training forward, ``model.backward(loss)``, ``optimizer.step()``
and ``optimizer.zero_grad()``, all in the same :class:`hetensor.nn.run.Run`,
so the bootstraps are placed over forward + backward + update as one circuit
(just in time, from the ranges that :func:`hetensor.nn.calibrate_training`
recorded). In encrypted mode the batch is encrypted as one token matrix (the
sequences share the slots), labels stay plaintext (the paper's shortcut) and
the first step makes every rotation key it meets; the loss shown is computed
from decrypted logits (the key holder's view). Checkpoints hold the adapters
(ciphertexts through :func:`hetensor.save`), the optimizer's moments and the
history.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np

from .autograd import parameters, unwrap

MODES = ("plain", "simulate", "encrypted")


class Trainer:
    """``Trainer(model, optimizer, loss, mode=..., ctx=...).fit(x, y, epochs=..., batch_size=...)``.

    ``history`` is a list of per-step records: step, loss, seconds, bootstraps
    and (every ``eval_every`` steps, when evaluation data is given) accuracy of
    the current adapters in plain mode.
    """

    def __init__(self, model: Any, optimizer: Any, loss: Any, *, mode: str = "plain", ctx: Any = None,
                 checkpoint_dir: Optional[str] = None, progress: bool = True, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode != "plain" and ctx is None:
            raise ValueError(f"{mode} mode needs a context (ctx=hetensor.Context.from_preset(..., bootstrap=True))")
        self.model, self.optimizer, self.loss, self.mode, self.ctx = model, optimizer, loss, mode, ctx
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.rng = np.random.default_rng(seed)
        self.history: List[Dict[str, Any]] = []
        if mode == "encrypted" and not all(p.encrypted for p in parameters(model)):
            raise ValueError("encrypted training keeps the adapters encrypted: call hetensor.nn.encrypt_adapters("
                             "model, ctx) first (after hetensor.nn.calibrate_training)")

    # -- one step -------------------------------------------------------------------------
    def step(self, xb: np.ndarray, yb: np.ndarray) -> Dict[str, Any]:
        """Forward, backward and update on one batch; returns the step's record."""
        model = self.model
        model.train()
        t0 = time.perf_counter()
        if self.mode == "plain":
            out = model(xb)
        elif self.mode == "simulate":
            out = model.simulate(xb, self.ctx, rng=self.rng)
        else:
            from .tokens import encrypt_tokens

            ct, seq_len = encrypt_tokens(self.ctx, xb)
            out = model(ct, seq_len=seq_len, auto_keys=True)
        loss = self.loss(out, yb)
        model.backward(loss)
        run = model.last_run
        self.optimizer.step()
        self.optimizer.zero_grad()
        rec = dict(step=len(self.history) + 1, loss=loss.item(), seconds=time.perf_counter() - t0,
                   bootstraps=len(run.bootstraps), circuits=run.circuits, batch=len(xb))
        self.history.append(rec)
        return rec

    # -- the loop --------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int = 1, batch_size: int = 16,
            steps: Optional[int] = None, eval_data: Optional[tuple] = None, eval_every: int = 0,
            checkpoint_every: int = 0) -> List[Dict[str, Any]]:
        """Shuffled batches for ``epochs`` epochs (or ``steps`` steps). Returns ``history``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        per_epoch = math.ceil(len(x) / batch_size)
        total = steps if steps is not None else epochs * per_epoch
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"{self.mode} fine-tuning", unit="step")
        done = 0
        try:
            while done < total:
                perm = self.rng.permutation(len(x))
                for i in range(0, len(x), batch_size):
                    if done >= total:
                        break
                    idx = perm[i:i + batch_size]
                    rec = self.step(x[idx], y[idx])
                    done += 1
                    if eval_data is not None and eval_every and (done % eval_every == 0 or done == total):
                        rec["accuracy"] = self.evaluate(*eval_data)
                    if self.checkpoint_dir and checkpoint_every and done % checkpoint_every == 0:
                        self.save_checkpoint(os.path.join(self.checkpoint_dir, f"step{done}"))
                    if bar is not None:
                        bar.update(1)
                        post = dict(loss=f"{rec['loss']:.4f}")
                        if "accuracy" in rec:
                            post["acc"] = f"{rec['accuracy'] * 100:.1f}%"
                        bar.set_postfix(post)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy of the current adapters in plain mode (encrypted adapters are decrypted
        into a copy: the key holder's view)."""
        model = self.model
        enc = [p for p in parameters(model) if p.encrypted]
        if enc:
            saved = [(p, p.data) for p in enc]
            from .training import decrypt_adapters

            decrypt_adapters(model, self.ctx)
        try:
            was = model.training
            model.eval()
            logits = model(np.asarray(x, dtype=np.float64))
            model.train(was)
        finally:
            if enc:
                for p, d in saved:
                    p.data = d
        return float(np.mean(np.asarray(logits).argmax(1) == np.asarray(y)))

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, path: str) -> None:
        """Adapters (``hetensor.save`` for ciphertexts, ``.npy`` for numpy), AdamW/SGD
        moments and the history under the directory ``path``."""
        from .. import serialize

        os.makedirs(path, exist_ok=True)
        meta: Dict[str, Any] = dict(mode=self.mode, steps=self.optimizer.steps, history=self.history, params=[])
        for i, p in enumerate(parameters(self.model)):
            entry = dict(module=_module_name(self.model, p.module), name=p.name, files={})
            items = {"data": p.data}
            st = self.optimizer.state.get(self.optimizer._key(p), {})
            for k, v in st.items():
                if k in ("m", "v", "momentum"):
                    items[k] = unwrap(v)
            entry["t"] = st.get("t", 0)
            for k, v in items.items():
                if isinstance(v, np.ndarray):
                    fn = f"p{i}.{k}.npy"
                    np.save(os.path.join(path, fn), v)
                else:
                    fn = f"p{i}.{k}.ht"
                    serialize.save(v, os.path.join(path, fn))
                entry["files"][k] = fn
            meta["params"].append(entry)
        with open(os.path.join(path, "checkpoint.json"), "w") as f:
            json.dump(meta, f, indent=1, default=float)

    def load_checkpoint(self, path: str) -> None:
        """Restore what :meth:`save_checkpoint` wrote (the same model and optimizer kind)."""
        from .. import serialize
        from .tensors import CipherArray, PlainArray

        with open(os.path.join(path, "checkpoint.json")) as f:
            meta = json.load(f)
        params = parameters(self.model)
        if len(params) != len(meta["params"]):
            raise ValueError(f"the checkpoint holds {len(meta['params'])} parameters, the model {len(params)}")
        for p, entry in zip(params, meta["params"]):
            if entry["name"] != p.name or entry["module"] != _module_name(self.model, p.module):
                raise ValueError(f"checkpoint parameter {entry['module']}.{entry['name']} does not match {p!r}")
            st: Dict[str, Any] = {"t": int(entry.get("t", 0))}
            for k, fn in entry["files"].items():
                full = os.path.join(path, fn)
                v = np.load(full) if fn.endswith(".npy") else serialize.load(full, self.ctx)
                if k == "data":
                    p.data = v
                else:
                    st[k] = PlainArray(v) if isinstance(v, np.ndarray) else CipherArray(v, True)
            self.optimizer.state[self.optimizer._key(p)] = st
        self.optimizer.steps = int(meta["steps"])
        self.history = list(meta["history"])


def _module_name(model: Any, module: Any) -> str:
    for n, m in model.named_modules():
        if m is module:
            return n
    return type(module).__name__


def plot_history(histories: Dict[str, List[Dict[str, Any]]], path: str, *, title: str = "LoRA fine-tuning") -> str:
    """Loss and accuracy per step of several runs (e.g. plain, simulate, encrypted) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, hist in histories.items():
        steps = [r["step"] for r in hist]
        ax1.plot(steps, [r["loss"] for r in hist], label=name, marker="." if len(hist) < 30 else None)
        acc = [(r["step"], r["accuracy"]) for r in hist if "accuracy" in r]
        if acc:
            ax2.plot([a[0] for a in acc], [100 * a[1] for a in acc], label=name, marker="o")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (cross-entropy)")
    ax2.set_xlabel("step")
    ax2.set_ylabel("test accuracy (%)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
