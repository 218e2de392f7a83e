"""Stochastic gradient descent with optional momentum and weight decay."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Union

from ..nn.autograd import Parameter, grad_bound, param_bound
from ..nn.backward import Ops
from .optimizer import Optimizer


class SGD(Optimizer):
    """``p <- p - lr (b)``, ``b = momentum b + g + weight_decay p`` (torch.optim.SGD
    without dampening or Nesterov). The momentum buffer is encrypted when the
    gradients are."""

    def __init__(self, params: Iterable[Parameter], lr: Union[float, Callable[[int], float]], momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0 or weight_decay < 0.0:
            raise ValueError(f"need 0 <= momentum < 1 and weight_decay >= 0, not {momentum}, {weight_decay}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)

    def update(self, p: Parameter, w: Any, g: Any, state: Dict[str, Any], lr: float, run: Any) -> Any:
        s = p.scale  # stored weight = s * natural weight; natural gradient = s * stored gradient
        ops = Ops(run, p.module, "opt.")
        gb = grad_bound(p)
        wb = param_bound(p) * max(1.0, s)
        gb_items = (g, 1, p.name + ".g") if gb is None else (g, 1, p.name + ".g", gb / s)
        g, w = ops.ready([gb_items, (w, 1, p.name + ".w", wb)])
        d = g * (s * s) if s != 1.0 else g                      # natural step direction, times s
        if self.weight_decay:
            d = ops.add(d, ops.mul(w, self.weight_decay, "wd"), "wd_add")
        if self.momentum:
            buf = state.get("momentum")
            if buf is not None:
                b = gb * 4.0 * s if gb is not None else None
                (buf,) = ops.ready([(buf, 1, p.name + ".buf") if b is None else (buf, 1, p.name + ".buf", b)])
                d = ops.add(ops.mul(buf, self.momentum, "mom"), d, "mom_add")
            state["momentum"] = d
        return ops.add(w, ops.mul(d, -lr, "lr"), "update")
