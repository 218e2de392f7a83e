"""Preparing a model for training: backward calibration and encrypted adapters."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .autograd import parameters
from .full import TrainableLinear
from .linear import LoRALinear


def calibrate_training(model: Any, inputs: Any, targets: Any, loss: Any, *, batch_size: int = 16,
                       optimizer: Optional[Callable[[Any], Any]] = None, epochs: int = 1, mask: Any = None,
                       seed: int = 0) -> Any:
    """Plain-mode passes over ``inputs`` in batches of ``batch_size`` (the training
    batch size: a mean over fewer samples gives larger gradients) that record what a
    simulated or encrypted training run needs to place its bootstraps and fit its
    polynomials: the logit range of a :class:`~hetensor.nn.loss.CrossEntropyLoss`,
    the range of every backward operand, of every gradient and of every trainable
    weight.

    With ``optimizer`` (``params -> Optimizer``, e.g. ``lambda ps: hopt.AdamW(ps, lr=...)``)
    the passes *train* for ``epochs`` epochs and record along the trajectory, then
    put the adapters back: LoRA starts with B = 0, so the gradient of A is 0 at
    the start and only training shows its size. Without it, one pass at the
    current weights. The model must be calibrated (forward ranges) and its
    adapters plaintext. Gradients are cleared afterwards. Returns ``model``."""
    from .loss import CrossEntropyLoss

    x = np.asarray(inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else inputs, dtype=np.float64)
    y = np.asarray(targets.detach().cpu().numpy() if hasattr(targets, "detach") else targets)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    if batch_size < 1 or epochs < 1:
        raise ValueError(f"batch_size and epochs must be >= 1, not {batch_size}, {epochs}")
    params = parameters(model)
    if not params:
        raise ValueError("the model has no trainable weights (LoRA adapters)")
    if any(p.encrypted for p in params):
        raise ValueError("calibrate_training runs in plain mode: calibrate before encrypt_adapters")
    was_training = model.training
    ce = isinstance(loss, CrossEntropyLoss)
    if ce:
        model.eval()
        for i in range(0, len(x), batch_size):
            loss.calibrate(model(x[i:i + batch_size], mask=None if mask is None else mask[i:i + batch_size]))
    start = [p.data.copy() for p in params]
    opt = optimizer(iter(params)) if optimizer is not None else None
    model.train()
    model.zero_grad()
    rng = np.random.default_rng(seed)
    for _ in range(epochs if opt is not None else 1):
        order = rng.permutation(len(x)) if opt is not None else np.arange(len(x))
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            for p in params:
                _widen(p.module, "param." + p.name, p.data)
            out = model(x[idx], mask=None if mask is None else mask[idx])
            if ce:
                loss.calibrate(out)
            model.last_run.tape.calibrating = True
            model.backward(loss(out, y[idx]))
            model.last_run.tape = None
            for p in params:
                _widen(p.module, "grad." + p.name, p.grad * p.scale)
            if opt is not None:
                opt.step()
            model.zero_grad()
    for p, v in zip(params, start):
        p.data = v
    model.train(was_training)
    return model


def _widen(module: Any, site: str, v: np.ndarray) -> None:
    lo, hi = float(np.min(v)), float(np.max(v))
    old = module.ranges.get(site)
    module.ranges[site] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]


def encrypt_adapters(model: Any, ctx: Any) -> Any:
    """Encrypt every trainable weight of ``model`` under ``ctx``: the LoRA adapters (see
    :meth:`hetensor.nn.LoRALinear.encrypt_adapters`) and the weights of fully trained
    projections (:meth:`hetensor.nn.TrainableLinear.encrypt_weights`). Returns ``model``."""
    n = 0
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.encrypt_adapters(ctx)
            n += 1
        elif isinstance(m, TrainableLinear):
            m.encrypt_weights(ctx)
            n += 1
    if not n:
        raise ValueError("the model has no LoRALinear or TrainableLinear layers")
    return model


def decrypt_adapters(model: Any, ctx: Optional[Any] = None) -> Any:
    """Decrypt the encrypted adapters back to numpy A (rank x in) and B (out x rank)
    (needs the secret key). Returns ``model``."""
    for m in model.modules():
        if isinstance(m, LoRALinear) and m.adapters_encrypted:
            c = ctx or m.lora_A.context
            a = np.asarray(c.decrypt(m.lora_A), dtype=np.float64).T
            b = np.asarray(c.decrypt(m.lora_B), dtype=np.float64).T / m.scaling
            m.register_parameter("lora_A", a, trainable=True)
            m.register_parameter("lora_B", b, trainable=True)
            m._changed()
        elif isinstance(m, TrainableLinear) and m.weights_encrypted:
            c = ctx or m.weight.context
            m.register_parameter("weight", np.asarray(c.decrypt(m.weight), dtype=np.float64).T, trainable=True)
            m._changed()
    return model
