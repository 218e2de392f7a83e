"""Structured logs: one JSON object per line on the ``hetensor.remote`` logger.

Records carry an ``event`` and plain fields (layer, sizes, seconds, status,
the session's tag). Never a key, a ciphertext byte or a session id: the
fields are passed explicitly by the server, nothing is dumped wholesale.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER = logging.getLogger("hetensor.remote")


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "event": ..., **fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "event": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


def setup(stream: Any = None, level: int = logging.INFO) -> None:
    """Send ``hetensor.remote`` records as JSON lines to ``stream`` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def event(name: str, *, severity: int = logging.INFO, **fields: Any) -> None:
    """Log ``name`` with ``fields`` (numbers, short strings; never key or ciphertext bytes)."""
    LOGGER.log(severity, name, extra={"fields": fields})


class Timer:
    """Seconds since creation, rounded for logs."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self.t0, 4)
