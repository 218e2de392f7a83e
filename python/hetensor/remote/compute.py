"""The server's products on a session's ciphertexts (no HTTP here).

forward: ``y = x W^T + b`` (one CPMM, one level); backward: the activation
gradient through the frozen weight, ``dx = g W`` (one CPMM, one level; no
bias). The weight is encoded once per session context and direction
(:class:`hetensor.PlainMatrix`, diagonals kept per level). The result is
brought down to the level the client asks for, so only the limbs it needs
travel back.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import serialize
from ..errors import FormatError
from ..layout import Layout
from ..linalg import PlainMatrix
from .sessions import Session
from .weights import LinearWeights


class RequestError(ValueError):
    """A request the server refuses (HTTP 400), with what to change."""


def load_input(session: Session, data: bytes, layer: LinearWeights, direction: str) -> Any:
    """The CipherTensor in ``data``, checked against the session's keys and the layer's shape."""
    try:
        x = serialize.load(data, session.ctx)
    except FormatError as e:
        raise RequestError(f"the body is not a ciphertext of this session's keys: {e}") from None
    if not hasattr(x, "level") or not hasattr(x, "layout"):
        raise RequestError("the body must be one CipherTensor (hetensor.to_bytes of an encrypted matrix)")
    width = layer.in_features if direction == "forward" else layer.out_features
    if x.ndim != 2 or x.shape[1] != width:
        raise RequestError(f"layer {layer.name!r} {direction} takes a (rows, {width}) matrix, got shape "
                           f"{tuple(x.shape)}")
    if not isinstance(x.layout, Layout):
        raise RequestError("encrypt the input with layout='matrix' (ctx.encrypt(x, layout='matrix'))")
    if x.level < 1:
        raise RequestError("the input is at level 0; a product needs one level: encrypt at a higher level")
    return x


def product(session: Session, layer: LinearWeights, x: Any, direction: str, level: Optional[int]) -> Any:
    """``x W^T + b`` (forward) or ``x W`` (backward), at ``level`` when given."""
    if direction == "forward":
        w = session.matrix((layer.name, "wT"), lambda: PlainMatrix(session.ctx, layer.weight.T, name=layer.name))
        y = x @ w
        if layer.bias is not None:
            y = y + layer.bias
    else:
        w = session.matrix((layer.name, "w"), lambda: PlainMatrix(session.ctx, layer.weight, name=layer.name))
        y = x @ w
    if level is not None:
        if level > y.level:
            raise RequestError(f"the result is at level {y.level}; level={level} is above it (levels only go down)")
        if level < y.level:
            y = y.level_to(level)
    return y
