"""PyTorch side of a hybrid model: a Linear whose weights live on a server.

:class:`RemoteLinear` encrypts its input, has the server compute
``x W^T + b`` and decrypts; its backward sends the encrypted output gradient
for ``g W`` (the input gradient through the frozen weight), so the layer sits
in an ordinary torch training loop (LoRA adapters and everything else stay
local). It has no parameters: W is frozen and never leaves the server.
:func:`to_hybrid` swaps named ``torch.nn.Linear`` layers for it;
:func:`export_linear` writes the model owner's file of those weights.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Union

import numpy as np
import torch

from .client import RemoteSession
from .weights import PathLike, save_layers


class _RemoteProduct(torch.autograd.Function):
    """y = remote forward(x); dx = remote backward(dy). No gradient for W (frozen, on the server)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, session: RemoteSession, name: str) -> torch.Tensor:
        ctx.session, ctx.name = session, name
        flat = x.detach().reshape(-1, x.shape[-1]).to("cpu", torch.float64).numpy()
        y = session.forward(name, flat)
        out = torch.from_numpy(np.ascontiguousarray(y)).to(device=x.device, dtype=x.dtype)
        return out.reshape(*x.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        flat = grad.detach().reshape(-1, grad.shape[-1]).to("cpu", torch.float64).numpy()
        g = ctx.session.backward(ctx.name, flat)
        dx = torch.from_numpy(np.ascontiguousarray(g)).to(device=grad.device, dtype=grad.dtype)
        return dx.reshape(*grad.shape[:-1], g.shape[-1]), None, None


class RemoteLinear(torch.nn.Module):
    """``y = x W^T + b`` computed by the server layer ``name`` on the encrypted x.

    Input (..., in_features) of any float dtype; output of the same dtype and
    device. Its backward runs remotely too (the session needs ``backward=True``,
    the default). Errors of the server raise :class:`hetensor.remote.RemoteError`.
    """

    def __init__(self, session: RemoteSession, name: str) -> None:
        super().__init__()
        if not isinstance(session, RemoteSession):
            raise TypeError(f"RemoteLinear needs a hetensor.remote.RemoteSession, got {type(session).__name__}")
        if name not in session.names:
            raise ValueError(f"the session does not use layer {name!r}; it uses {session.names}")
        self.session, self.name = session, name
        self.in_features = int(session.layers[name]["in_features"])
        self.out_features = int(session.layers[name]["out_features"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            raise TypeError("RemoteLinear takes a floating-point torch tensor")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"RemoteLinear {self.name!r} takes (..., {self.in_features}), got {tuple(x.shape)}")
        return _RemoteProduct.apply(x, self.session, self.name)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, in_features={self.in_features}, out_features={self.out_features}"


def _linear(model: torch.nn.Module, name: str) -> torch.nn.Linear:
    try:
        mod = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"the model has no submodule {name!r}") from None
    if not isinstance(mod, torch.nn.Linear):
        raise TypeError(f"{name!r} is a {type(mod).__name__}, not a torch.nn.Linear")
    return mod


def export_linear(model: torch.nn.Module, names: Iterable[str], path: PathLike) -> None:
    """Write the weights (and biases) of the Linear layers ``names`` of ``model`` as a
    model file for ``hetensor serve`` (``.safetensors`` or ``.npz``)."""
    out = {}
    for name in names:
        lin = _linear(model, name)
        b = None if lin.bias is None else lin.bias.detach().cpu().double().numpy()
        out[name] = (lin.weight.detach().cpu().double().numpy(), b)
    if not out:
        raise ValueError("export_linear needs at least one layer name")
    save_layers(path, out)


def to_hybrid(model: torch.nn.Module, session: RemoteSession, remote: Union[Iterable[str], None] = None) -> List[str]:
    """Replace the Linear layers ``remote`` of ``model`` (in place) with :class:`RemoteLinear`.

    ``remote`` defaults to every layer of the session. Each replaced layer's
    shape must match the server's; its local weights are dropped (the
    client's model no longer holds them). Returns the names replaced.
    """
    names = list(session.names if remote is None else remote)
    for name in names:
        lin = _linear(model, name)
        if name not in session.layers:
            raise ValueError(f"the server has no layer {name!r}; it has {sorted(session.layers)}")
        spec = session.layers[name]
        if (lin.in_features, lin.out_features) != (spec["in_features"], spec["out_features"]):
            raise ValueError(f"{name!r} is {lin.in_features} -> {lin.out_features} here, "
                             f"{spec['in_features']} -> {spec['out_features']} on the server")
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, RemoteLinear(session, name))
    return names
