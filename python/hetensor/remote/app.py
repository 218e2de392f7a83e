"""The server: an ASGI app (FastAPI) that runs a model's linear layers on a client's ciphertexts.

Routes (bodies are hetensor records, see :mod:`hetensor.remote.wire`):

- ``GET /health``: liveness, session count.
- ``GET /v1/model``: the layers (names and shapes, never weights) and limits.
- ``POST /v1/sessions``: body = a public context (``ctx.public().to_bytes()``),
  streamed to a temporary file and memory-mapped when loaded, so gigabyte keys
  are never held twice; returns ``{"session": id}`` (201).
- ``POST /v1/sessions/{id}/layers/{name}/forward?level=L`` (and ``backward``):
  body = one encrypted ``(rows, width)`` matrix; returns the product's ciphertext,
  brought down to level L.
- ``DELETE /v1/sessions/{id}``.

Errors are JSON ``{"error": short_code, "detail": what to change}`` with a 4xx
status; a request that fails never ends the process. Heavy work runs in worker
threads (the core releases the GIL), at most ``Limits.max_concurrent`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .. import __version__, serialize
from ..errors import FormatError, MissingKeyError, SecurityError
from . import logs, wire
from .compute import RequestError, load_input, product
from .limits import Limits
from .sessions import Session, SessionStore
from .weights import LinearWeights


class _Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


async def _chunks(request: Request, limit: int, timeout: float, what: str) -> AsyncIterator[bytes]:
    """The body in chunks, refused once it passes ``limit`` bytes or stalls for ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise _Refused(400, "bad_length", "the Content-Length header is not an integer") from None
        if n > limit:
            raise _Refused(413, "too_large", f"the {what} has {n} bytes; this server accepts at most {limit}")
    stream = request.stream().__aiter__()
    got = 0
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise _Refused(408, "body_timeout", f"no bytes of the {what} for {timeout:g} s") from None
        got += len(chunk)
        if got > limit:
            raise _Refused(413, "too_large", f"the {what} passed {limit} bytes, the most this server accepts")
        if chunk:
            yield chunk


def create_app(layers: Dict[str, LinearWeights], limits: Optional[Limits] = None, *,
               tmp_dir: Optional[str] = None) -> FastAPI:
    """The ASGI app serving ``layers`` (see :func:`hetensor.remote.load_layers`) under ``limits``.

    Run it with uvicorn (``hetensor serve`` does), or drive it in-process
    with ``fastapi.testclient.TestClient``. ``tmp_dir`` holds key uploads
    while they load (default: the system's temporary directory).
    """
    if not layers:
        raise ValueError("create_app needs at least one layer")
    lim = limits or Limits()
    store = SessionStore(lim.max_sessions, lim.max_total_key_bytes, lim.session_ttl)
    state: Dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["slots"] = asyncio.Semaphore(lim.max_concurrent)

        async def reaper() -> None:
            while True:
                await asyncio.sleep(min(lim.session_ttl / 2, 30.0))
                for tag in store.expire():
                    logs.event("session_expired", session=tag)

        task = asyncio.create_task(reaper())
        logs.event("startup", layers=len(layers), version=__version__, **{k: v for k, v in lim.public().items()})
        try:
            yield
        finally:
            task.cancel()
            n = store.clear()
            logs.event("shutdown", sessions_dropped=n)

    app = FastAPI(title="hetensor remote layers", version=__version__, lifespan=lifespan)
    app.state.store = store
    app.state.limits = lim
    described = {name: w.describe() for name, w in layers.items()}

    @app.exception_handler(_Refused)
    async def _refused(request: Request, exc: _Refused) -> JSONResponse:
        logs.event("refused", status=exc.status, error=exc.error, path=_route(request))
        return _error(exc.status, exc.error, exc.detail)

    @app.get("/health")
    async def health() -> Dict[str, Any]:
        return {"status": "ok", "version": __version__, "sessions": len(store), "key_bytes": store.key_bytes,
                "layers": len(layers)}

    @app.get(wire.model_path())
    async def model() -> Dict[str, Any]:
        return {"api": wire.API_VERSION, "layers": described, "limits": lim.public()}

    @app.post(wire.sessions_path(), status_code=201)
    async def open_session(request: Request) -> Any:
        timer = logs.Timer()
        fd, path = tempfile.mkstemp(prefix="hetensor-keys-", suffix=".bin", dir=tmp_dir)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in _chunks(request, lim.max_key_bytes, lim.body_timeout, "key upload"):
                    size += len(chunk)
                    await run_in_threadpool(f.write, chunk)
            if size == 0:
                raise _Refused(400, "empty_body", "send ctx.public().to_bytes() as the body")
            try:
                ctx = await run_in_threadpool(serialize.load, path, allow_insecure=lim.allow_insecure)
            except SecurityError as e:
                raise _Refused(400, "insecure_parameters", str(e)) from None
            except (FormatError, ValueError, TypeError) as e:
                raise _Refused(400, "bad_keys", f"the body is not a hetensor context: {e}") from None
        except ClientDisconnect:
            logs.event("client_disconnected", path=_route(request), bytes_in=size)
            return Response(status_code=499)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if not hasattr(ctx, "is_public"):
            raise _Refused(400, "bad_keys", "the body must be a context (ctx.public().to_bytes())")
        if not ctx.is_public:
            del ctx
            raise _Refused(400, "secret_key_sent", "the upload holds the secret key; it was discarded. Send "
                           "ctx.public().to_bytes() only, and treat the secret key as exposed")
        try:
            session, evicted = store.add(ctx, size)
        except RuntimeError as e:
            raise _Refused(503, "full", str(e)) from None
        for tag in evicted:
            logs.event("session_evicted", session=tag)
        logs.event("session_opened", session=session.tag, bytes_in=size, params=ctx.name, seconds=timer())
        return {"session": session.id, "ttl": lim.session_ttl, "key_bytes": size}

    @app.delete(wire.sessions_path() + "/{session_id}", status_code=204)
    async def close_session(session_id: str) -> Response:
        s = store.remove(session_id)
        if s is None:
            raise _Refused(404, "unknown_session", "no such session (closed, expired or evicted)")
        logs.event("session_closed", session=s.tag)
        return Response(status_code=204)

    @app.post(wire.sessions_path() + "/{session_id}/layers/{layer}/{direction}")
    async def run_product(request: Request, session_id: str, layer: str, direction: str,
                          level: Optional[int] = Query(None, ge=0, le=64)) -> Response:
        timer = logs.Timer()
        if direction not in wire.DIRECTIONS:
            raise _Refused(404, "unknown_direction", f"use one of {list(wire.DIRECTIONS)}")
        w = layers.get(layer)
        if w is None:
            raise _Refused(404, "unknown_layer", f"this server has no layer {layer!r}; it has {sorted(layers)}")
        session = store.acquire(session_id)
        if session is None:
            raise _Refused(404, "unknown_session", "no such session (closed, expired or evicted): open a new one")
        try:
            try:
                body = b"".join([c async for c in _chunks(request, lim.max_body_bytes, lim.body_timeout,
                                                             "ciphertext")])
            except ClientDisconnect:
                logs.event("client_disconnected", session=session.tag, layer=layer)
                return Response(status_code=499)
            try:
                await asyncio.wait_for(state["slots"].acquire(), lim.queue_timeout)
            except asyncio.TimeoutError:
                raise _Refused(503, "busy", f"no computing slot freed within {lim.queue_timeout:g} s; retry") from None
            try:
                out, lvl = await run_in_threadpool(_compute, session, w, body, direction, level)
            finally:
                state["slots"].release()
        finally:
            store.release(session)
        logs.event("product", session=session.tag, layer=layer, direction=direction, bytes_in=len(body),
                   bytes_out=len(out), result_level=lvl, seconds=timer())
        return Response(out, media_type=wire.OCTET,
                        headers={wire.H_LEVEL: str(lvl), wire.H_SECONDS: f"{timer():.4f}"})

    return app


def _compute(session: Session, w: LinearWeights, body: bytes, direction: str, level: Optional[int]) -> Any:
    with session.lock:
        try:
            x = load_input(session, body, w, direction)
            y = product(session, w, x, direction, level)
        except MissingKeyError as e:
            raise _Refused(400, "missing_keys", f"the session's keys lack rotation steps {e.steps}: make them with "
                           "hetensor.remote.wire.rotation_steps(ctx, layers, rows) before opening the session") from None
        except (RequestError, ValueError, TypeError) as e:
            raise _Refused(400, "bad_request", str(e)) from None
        return serialize.to_bytes(y), int(y.level)


def _route(request: Request) -> str:
    """The route's template (never the path: it holds the session id)."""
    route = request.scope.get("route")
    return getattr(route, "path", "?")
