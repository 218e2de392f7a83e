"""Hybrid deployment: a server runs a model's linear layers on a client's ciphertexts.

The model owner keeps the weights of some linear layers on a server
(``hetensor serve MODEL``); the client runs the rest of the model locally,
encrypts the activations that enter those layers, and decrypts what comes
back. The server sees only ciphertexts and the client's evaluation keys; the
client never sees the remote weights. See docs/REMOTE.md.

Modules (one job each): ``weights`` (the model file), ``limits``,
``sessions`` (keys per client), ``wire`` (paths, keys a session needs),
``compute`` (the products), ``logs`` (JSON lines), ``app`` (the FastAPI
routes), ``client`` (:class:`RemoteSession`), ``modules``
(:class:`RemoteLinear`, :func:`to_hybrid`; needs torch), ``cli``
(``hetensor serve``). The server needs the ``remote`` extra
(``pip install 'hetensor[remote]'``: fastapi, uvicorn, httpx, safetensors).
"""

from __future__ import annotations

from typing import Any

from .limits import Limits, parse_size
from .weights import LinearWeights, load_layers, save_layers

_LAZY = {
    "create_app": "app",
    "RemoteSession": "client",
    "RemoteError": "client",
    "Traffic": "client",
    "RemoteLinear": "modules",
    "to_hybrid": "modules",
    "export_linear": "modules",
    "rotation_steps": "wire",
}


def __getattr__(name: str) -> Any:
    # The server stack (fastapi), the client (httpx) and torch load only when used.
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'hetensor.remote' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{mod}", __name__), name)


__all__ = ["Limits", "LinearWeights", "RemoteError", "RemoteLinear", "RemoteSession", "Traffic", "create_app",
           "export_linear", "load_layers", "parse_size", "rotation_steps", "save_layers", "to_hybrid"]
