"""Base class of the optimizers: parameter handles, learning rate, level management."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Union

import numpy as np

from ..nn.autograd import Parameter, param_bound, unwrap
from ..nn.tensors import CipherArray, PlainArray, SimTensor


class Optimizer:
    """Holds :class:`hetensor.nn.autograd.Parameter` handles (``model.lora_parameters()``)
    and per-parameter state; subclasses implement :meth:`update`."""

    def __init__(self, params: Iterable[Parameter], lr: Union[float, Callable[[int], float]]) -> None:
        self.params: List[Parameter] = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters (does the model have LoRA adapters?)")
        for p in self.params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizers take the handles of model.lora_parameters(), not {type(p).__name__}")
        if not callable(lr) and not float(lr) > 0:
            raise ValueError(f"lr must be > 0 or a schedule step -> lr, not {lr!r}")
        self.lr = lr
        self.steps = 0
        self.state: Dict[int, Dict[str, Any]] = {}

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (1-based)."""
        return float(self.lr(step)) if callable(self.lr) else float(self.lr)

    def zero_grad(self) -> None:
        """Forget the accumulated gradients."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        self.steps += 1
        lr = self.lr_at(self.steps)
        for p in self.params:
            g = p.grad_tensor
            if g is None:
                continue
            st = self.state.setdefault(id(p.module) * 64 + hash(p.name) % 64, {})
            run = _run_of(p)
            w = _weight_tensor(p, g, run)
            new = self.update(p, w, g, st, lr, run)
            if isinstance(new, CipherArray) and run.can_bootstrap:
                # the next forward multiplies by the weight: bring it back to the top level (the
                # paper bootstraps theta after every update)
                from ..nn.backward import Ops

                top = run.ctx.fresh_level - run.reserve
                if new.level < top + run.reserve:
                    (new,) = Ops(run, p.module, "opt.").ready([(new, top, p.name + ".fresh",
                                                                param_bound(p) * max(1.0, p.scale))])
            p.data = unwrap(new)

    def update(self, p: Parameter, w: Any, g: Any, state: Dict[str, Any], lr: float, run: Any) -> Any:
        """The new value of ``w`` from its gradient ``g``: each optimizer (SGD, AdamW) defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define update(); use hetensor.optim.SGD or AdamW, "
                                  "or subclass Optimizer and define it")

    def state_dict(self) -> Dict[str, Any]:
        """Steps taken and the per-parameter state (moments: numpy or CipherTensors)."""
        return dict(steps=self.steps, state=[{k: unwrap(v) if isinstance(v, (PlainArray, CipherArray)) else v
                                              for k, v in self.state.get(self._key(p), {}).items()}
                                             for p in self.params])

    def _key(self, p: Parameter) -> int:
        return id(p.module) * 64 + hash(p.name) % 64


def _run_of(p: Parameter) -> Any:
    """The run of the backward that made ``p``'s gradient (its mode, context and reserve)."""
    runs = p.module.__dict__.get("_grad_runs", {})
    run = runs.get(p.name)
    if run is None:
        raise RuntimeError(f"{p!r} has a gradient but no run; gradients come from model.backward")
    return run


def _weight_tensor(p: Parameter, g: Any, run: Any) -> Any:
    """The weight in the gradient's tensor interface (a fresh SimTensor in simulate mode)."""
    data = p.data
    if isinstance(g, CipherArray):
        if isinstance(data, np.ndarray):
            raise ValueError(f"{p!r} is plaintext but its gradient is encrypted: encrypt the adapters "
                             f"(hetensor.nn.encrypt_adapters(model, ctx)) before training on encrypted data")
        return CipherArray(data, g.make_keys)
    if not isinstance(data, np.ndarray):
        raise ValueError(f"{p!r} is encrypted but its gradient is not")
    if isinstance(g, SimTensor):
        return SimTensor(data, g.model.fresh_level, g.model, g.rng)
    return PlainArray(data)
