"""The client: open a session on a server and run its layers on encrypted activations.

The client holds the secret key. It encrypts with it (``symmetric=True``), so
the uniform half of every ciphertext it sends is stored as a 32-byte seed
(half the bytes); it encrypts at level 1 (the one level a product uses:
two limbs instead of the whole chain) and asks for results at level 0, so
only one limb per polynomial comes back. Inputs of any row count are cut into blocks of the
session's ``rows`` (the rotation keys are made for that shape; the last block
is zero-padded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from .. import serialize
from . import wire

_UPLOAD_CHUNK = 1 << 22


class RemoteError(RuntimeError):
    """The server refused a request: ``status`` (HTTP), ``error`` (short code), the server's detail."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"server answered {status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


@dataclass
class Traffic:
    """Bytes and requests of a session (bodies only; HTTP headers not counted)."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    key_bytes: int = 0
    rows: int = 0  # activation rows (tokens) sent, padding excluded
    server_seconds: float = 0.0  # compute time the server reported
    per_layer: Dict[str, List[int]] = field(default_factory=dict)  # name -> [sent, received]

    def bytes_per_token(self) -> float:
        """(sent + received) per activation row over all products (key upload excluded)."""
        return (self.bytes_sent + self.bytes_received) / max(self.rows, 1)


def _raise_for(resp: Any) -> None:
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
        error, detail = str(body.get("error", "error")), str(body.get("detail", body))
    except ValueError:
        error, detail = "error", resp.text[:500]
    raise RemoteError(resp.status_code, error, detail)


def _chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for i in range(0, len(view), _UPLOAD_CHUNK):
        yield bytes(view[i:i + _UPLOAD_CHUNK])


class RemoteSession:
    """A session on a hetensor server: the client's keys uploaded once, then products.

    Args:
        server: the base URL (``"http://127.0.0.1:8000"``) or an ``httpx.Client``
            (e.g. ``fastapi.testclient.TestClient(app)`` for an in-process app).
        ctx: the client's Context (with the secret key; it never leaves).
        rows: activation rows per request (tokens); inputs are cut and padded
            to it. The rotation keys are made for this shape.
        layers: the server layers this session uses (default all).
        backward: also make the keys of the backward products (training).
        level: the level inputs are encrypted at (default 1: a product uses
            one level and the result is decrypted at 0). A higher level only
            costs bytes; it is for :meth:`encrypted` callers who keep computing.
        timeout: seconds per HTTP request (key upload included) when ``server`` is a URL;
            an ``httpx.Client`` passed in keeps its own timeouts.
    """

    def __init__(self, server: Any, ctx: Any, *, rows: int = 16, layers: Optional[Sequence[str]] = None,
                 backward: bool = True, level: int = 1, timeout: float = 600.0) -> None:
        import httpx

        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= ctx.slots:
            raise ValueError(f"rows must be an integer in [1, {ctx.slots}] (the context's slots), got {rows!r}")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= ctx.fresh_level:
            raise ValueError(f"level must be an integer in [1, {ctx.fresh_level}] (a product uses one), got {level!r}")
        if ctx.is_public:
            raise ValueError("RemoteSession needs the client's full Context (with the secret key): it encrypts "
                             "and decrypts; only ctx.public() is sent")
        if isinstance(server, str):
            self._http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout)
            self._own_http = True
        else:
            self._http, self._own_http = server, False
        self.ctx, self.rows, self.level, self.timeout = ctx, rows, level, timeout
        self.traffic = Traffic()
        self.session_id: Optional[str] = None
        try:
            self._open(layers, backward)
        except BaseException:
            if self._own_http:
                self._http.close()
            raise

    def _open(self, layers: Optional[Sequence[str]], backward: bool) -> None:
        ctx = self.ctx
        info = self._get_json(wire.model_path())
        if info.get("api") != wire.API_VERSION:
            raise RemoteError(0, "api_version", f"server speaks API {info.get('api')}, this client {wire.API_VERSION}")
        self.layers: Dict[str, Dict[str, Any]] = dict(info["layers"])
        self.names = list(layers) if layers is not None else list(self.layers)
        steps = wire.rotation_steps(ctx, self.layers, self.rows, backward=backward, names=self.names,
                                    level=self.level)
        missing = sorted(set(steps) - set(ctx.rotation_steps))
        if missing:
            ctx.generate_rotation_keys(missing)
        public = ctx.public().to_bytes()
        resp = self._http.post(wire.sessions_path(), content=_chunks(public),
                               headers={"content-type": wire.OCTET, "content-length": str(len(public))})
        _raise_for(resp)
        self.session_id = resp.json()["session"]
        self.traffic.key_bytes = len(public)

    # -- products --------------------------------------------------------------------
    def forward(self, name: str, x: Any) -> np.ndarray:
        """``x @ W^T + b`` of server layer ``name`` for x of shape (n, in) (numpy, float64 out)."""
        return self._run(name, x, "forward", "in_features")

    def backward(self, name: str, g: Any) -> np.ndarray:
        """``g @ W`` (the input gradient through the frozen weight) for g of shape (n, out)."""
        return self._run(name, g, "backward", "out_features")

    def encrypt(self, x: Any) -> Any:
        """``x`` (rows x width) encrypted as the session sends it: symmetric (seeded), matrix layout,
        at the session's level."""
        return self.ctx.encrypt(np.asarray(x, dtype=np.float64), symmetric=True, layout="matrix", level=self.level)

    def encrypted(self, name: str, x_ct: Any, direction: str = "forward", level: Optional[int] = 0) -> Any:
        """One product on an already encrypted ``(rows, width)`` matrix; returns the CipherTensor
        (at ``level``; None keeps the level the product leaves)."""
        sid = self._session()
        data = serialize.to_bytes(x_ct)
        params = {} if level is None else {wire.Q_LEVEL: str(level)}
        resp = self._http.post(wire.product_path(sid, name, direction), content=data, params=params,
                               headers={"content-type": wire.OCTET})
        _raise_for(resp)
        self.traffic.requests += 1
        self.traffic.bytes_sent += len(data)
        self.traffic.bytes_received += len(resp.content)
        self.traffic.server_seconds += float(resp.headers.get(wire.H_SECONDS, 0.0))
        per = self.traffic.per_layer.setdefault(name, [0, 0])
        per[0] += len(data)
        per[1] += len(resp.content)
        return serialize.load(resp.content, self.ctx)

    def _run(self, name: str, x: Any, direction: str, width_key: str) -> np.ndarray:
        if name not in self.names:
            raise ValueError(f"layer {name!r} is not part of this session; it uses {self.names}")
        arr = np.asarray(x, dtype=np.float64)
        width = int(self.layers[name][width_key])
        if arr.ndim != 2 or arr.shape[1] != width:
            raise ValueError(f"layer {name!r} {direction} takes an (n, {width}) array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"layer {name!r} {direction}: the input has NaN or Inf")
        outs = []
        for i in range(0, arr.shape[0], self.rows):
            block = arr[i:i + self.rows]
            n = block.shape[0]
            if n < self.rows:
                block = np.vstack([block, np.zeros((self.rows - n, width))])
            ct = self.encrypt(block)
            y = self.ctx.decrypt(self.encrypted(name, ct, direction, 0))
            outs.append(np.asarray(y)[:n])
            self.traffic.rows += n
        if not outs:
            other = "out_features" if width_key == "in_features" else "in_features"
            return np.zeros((0, int(self.layers[name][other])))
        return np.vstack(outs)

    # -- plumbing --------------------------------------------------------------------
    def _session(self) -> str:
        if self.session_id is None:
            raise RuntimeError("this session is closed; open a new RemoteSession")
        return self.session_id

    def _get_json(self, path: str) -> Dict[str, Any]:
        resp = self._http.get(path)
        _raise_for(resp)
        return resp.json()

    def close(self) -> None:
        """Delete the session on the server (its keys are dropped) and close the connection."""
        if self.session_id is not None:
            try:
                self._http.delete(wire.session_path(self.session_id))
            finally:
                self.session_id = None
                if self._own_http:
                    self._http.close()

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.session_id is None else "open"
        return f"RemoteSession({state}, layers={self.names}, rows={self.rows})"
