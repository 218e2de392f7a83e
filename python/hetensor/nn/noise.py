"""A noise model measured on a context, for simulate mode.

``measure(ctx)`` encrypts random values in [-1, 1] and measures the standard
deviation of the error of: a fresh encryption, a ciphertext product (with its
rescale), a plaintext-matrix product, and a bootstrap (when the context has
one). Simulate mode adds that much Gaussian noise after each operation of the
same kind (polynomials and encrypted products count as a few products). The
errors of the inputs propagate through the simulated values themselves, so
each figure slightly over-counts: the prediction errs on the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

import numpy as np


@dataclass
class NoiseModel:
    """Noise standard deviations (absolute, for values of order 1) per operation kind."""

    fresh_level: int
    sigmas: Dict[str, float] = field(default_factory=dict)
    #: the lowest level the context bootstraps from (its bootstrap contract)
    boot_input_level: int = 0

    def sigma(self, kind: str) -> float:
        if kind in self.sigmas:
            return self.sigmas[kind]
        mul = self.sigmas.get("mul", 0.0)
        return {"cpmm": self.sigmas.get("cpmm", mul), "ccmm": 2.0 * self.sigmas.get("cpmm", mul),
                "poly": 4.0 * mul}.get(kind, mul)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}=2^{np.log2(v):.1f}" for k, v in self.sigmas.items() if v > 0)
        return f"NoiseModel(fresh_level={self.fresh_level}, {parts})"


def measure(ctx: Any, seed: int = 0) -> NoiseModel:
    """Measure the noise of the basic operations on ``ctx`` (one small product
    and, when possible, one bootstrap)."""
    rng = np.random.default_rng(seed)
    n = 8
    x = rng.uniform(-1, 1, (n, n))
    y = rng.uniform(-1, 1, (n, n))
    w = rng.uniform(-1, 1, (n, n)) / np.sqrt(n)
    cx, cy = ctx.encrypt(x, layout="matrix"), ctx.encrypt(y, layout="matrix")
    sig = {"fresh": float(np.std(cx.decrypt() - x))}
    sig["mul"] = float(np.std((cx * cy).decrypt() - x * y))
    while True:
        try:
            prod = cx @ w
            break
        except KeyError as err:  # MissingKeyError: the product's keys
            ctx.generate_rotation_keys(getattr(err, "steps", []) or [])
            if not getattr(err, "steps", None):
                raise
    sig["cpmm"] = float(np.std(prod.decrypt() - x @ w))
    if ctx.can_bootstrap:
        sig["boot"] = float(np.std(cx.bootstrap().decrypt() - x))
    c = ctx.bootstrap_contract
    return NoiseModel(ctx.fresh_level, {k: max(v, 1e-300) for k, v in sig.items()},
                      0 if c is None else int(c.input_level))


def noise_model(model: Any, ctx: Any) -> NoiseModel:
    """The noise model of ``ctx``, measured once and kept with the model."""
    if ctx is None:
        raise ValueError("simulate mode needs a context: model.simulate(x, ctx)")
    cache = model.__dict__.setdefault("_noise", {})
    if id(ctx) not in cache:
        cache[id(ctx)] = measure(ctx)
    return cache[id(ctx)]
