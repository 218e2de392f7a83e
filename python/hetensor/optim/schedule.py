"""Learning-rate schedules: plaintext functions of the step number (1-based)."""

from __future__ import annotations

import math
from typing import Callable


def constant_schedule(lr: float) -> Callable[[int], float]:
    """``step -> lr``."""
    lr = float(lr)
    return lambda step: lr


def cosine_schedule(lr: float, total_steps: int, *, warmup: int = 0, final: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then a cosine decay from ``lr`` to
    ``final * lr`` at ``total_steps`` (constant after it)."""
    if total_steps < 1 or warmup < 0 or warmup >= total_steps:
        raise ValueError(f"need total_steps >= 1 and 0 <= warmup < total_steps, not {total_steps}, {warmup}")
    lr, final = float(lr), float(final)

    def f(step: int) -> float:
        if step <= warmup:
            return lr * step / max(warmup, 1) if warmup else lr
        t = min(1.0, (step - warmup) / (total_steps - warmup))
        return lr * (final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t)))

    return f
