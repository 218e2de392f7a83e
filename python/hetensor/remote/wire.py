"""What client and server agree on: paths, headers, and the keys a session needs.

Bodies are hetensor's own serialized records (docs/SECURITY.md, "The
format"): a public context for a session, one CipherTensor per product, in
``application/octet-stream``. JSON is used only for metadata and errors
(``{"error": ..., "detail": ...}``). Nothing here is a second wire format.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping

API_VERSION = 1
OCTET = "application/octet-stream"
# Response headers of a product
H_LEVEL = "X-Hetensor-Level"
H_SECONDS = "X-Hetensor-Seconds"
# The request header that asks for the result's level
Q_LEVEL = "level"
DIRECTIONS = ("forward", "backward")


def model_path() -> str:
    return f"/v{API_VERSION}/model"


def sessions_path() -> str:
    return f"/v{API_VERSION}/sessions"


def session_path(session_id: str) -> str:
    return f"{sessions_path()}/{session_id}"


def product_path(session_id: str, layer: str, direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return f"{session_path(session_id)}/layers/{layer}/{direction}"


def rotation_steps(ctx: Any, layers: Mapping[str, Mapping[str, Any]], rows: int, *,
                   backward: bool = True, names: Iterable[str] = (), level: Any = None) -> List[int]:
    """The rotation keys a session needs for products of ``rows`` x in activations.

    ``layers``: the server's layer descriptions (``/v1/model``: in_features,
    out_features); ``names`` restricts to some (default all). Forward is
    ``x @ W^T`` ((rows x in) @ (in x out)); backward is ``g @ W``
    ((rows x out) @ (out x in)). Both on inputs at ``level`` (default: the
    fresh level of ``ctx``; routes depend on it).
    """
    wanted = list(names) or list(layers)
    steps = set()
    for name in wanted:
        if name not in layers:
            raise ValueError(f"the server has no layer {name!r}; it has {sorted(layers)}")
        d_in, d_out = int(layers[name]["in_features"]), int(layers[name]["out_features"])
        steps.update(ctx.rotation_steps_for("cpmm", (rows, d_in), (d_in, d_out), level=level))
        if backward:
            steps.update(ctx.rotation_steps_for("cpmm", (rows, d_out), (d_out, d_in), level=level))
    return sorted(steps)
