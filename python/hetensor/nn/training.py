"""Preparing a model for training: backward calibration and encrypted adapters."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .autograd import parameters
from .linear import LoRALinear


def calibrate_training(model: Any, inputs: Any, targets: Any, loss: Any, *, batch_size: int = 64,
                       mask: Any = None) -> Any:
    """Plain-mode passes over ``inputs`` that record what a simulated or encrypted
    training run needs to place its bootstraps: the logit range of a
    :class:`~hetensor.nn.loss.CrossEntropyLoss` (``loss.calibrate``), the range of
    every backward site, of every gradient and of every trainable weight. The
    model must be calibrated already (forward ranges) and its adapters plaintext.
    Gradients are cleared afterwards. Returns ``model``."""
    from .loss import CrossEntropyLoss

    x = np.asarray(inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else inputs, dtype=np.float64)
    y = np.asarray(targets.detach().cpu().numpy() if hasattr(targets, "detach") else targets)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    params = parameters(model)
    if not params:
        raise ValueError("the model has no trainable weights (LoRA adapters)")
    if any(p.encrypted for p in params):
        raise ValueError("calibrate_training runs in plain mode: calibrate before encrypt_adapters")
    was_training = model.training
    if isinstance(loss, CrossEntropyLoss):
        model.eval()
        for i in range(0, len(x), batch_size):
            loss.calibrate(model(x[i:i + batch_size], mask=None if mask is None else mask[i:i + batch_size]))
    model.train()
    model.zero_grad()
    for p in params:
        _widen(p.module, "param." + p.name, p.data)
    for i in range(0, len(x), batch_size):
        out = model(x[i:i + batch_size], mask=None if mask is None else mask[i:i + batch_size])
        model.last_run.tape.calibrating = True
        model.backward(loss(out, y[i:i + batch_size]))
        model.last_run.tape = None
        for p in params:
            _widen(p.module, "grad." + p.name, p.grad)
        model.zero_grad()
    model.train(was_training)
    return model


def _widen(module: Any, site: str, v: np.ndarray) -> None:
    lo, hi = float(np.min(v)), float(np.max(v))
    old = module.ranges.get(site)
    module.ranges[site] = [lo, hi] if old is None else [min(old[0], lo), max(old[1], hi)]


def encrypt_adapters(model: Any, ctx: Any) -> Any:
    """Encrypt every LoRA adapter of ``model`` under ``ctx`` (see
    :meth:`hetensor.nn.LoRALinear.encrypt_adapters`). Returns ``model``."""
    n = 0
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.encrypt_adapters(ctx)
            n += 1
    if not n:
        raise ValueError("the model has no LoRALinear layers")
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
    return model
