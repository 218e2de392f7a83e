"""Functional forms of the losses (``hetensor.nn.functional.cross_entropy`` ...)."""

from __future__ import annotations

from .loss import cross_entropy, mse_loss

__all__ = ["cross_entropy", "mse_loss"]
