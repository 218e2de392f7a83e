"""hetensor.optim: optimizers for the trainable weights of hetensor.nn models.

Like ``torch.optim``: ``opt = AdamW(model.lora_parameters(), lr=1e-3)``, then
per step ``model.backward(loss)``, ``opt.step()``, ``opt.zero_grad()``. The
arithmetic runs in the mode of the gradients: float64 (plain), simulated CKKS
(simulate) or encrypted, where the moments of AdamW are ciphertexts and
1/sqrt(v_hat + eps) is a polynomial plus Newton steps (eps inside the root).
Learning rates are plaintext: a float or a schedule ``step -> lr``
(:func:`cosine_schedule`).
"""

from __future__ import annotations

from .adamw import AdamW
from .optimizer import Optimizer
from .schedule import constant_schedule, cosine_schedule
from .sgd import SGD

__all__ = ["AdamW", "Optimizer", "SGD", "constant_schedule", "cosine_schedule"]
