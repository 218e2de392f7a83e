"""What a server accepts: body sizes, sessions, time.

Every limit is checked before the work it bounds starts: a body larger than
its limit is refused from its Content-Length (413) or as soon as the streamed
bytes pass it, a full server evicts the least recently used session, a
request waits at most ``queue_timeout`` for a computing slot (503).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Union

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.I)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: Union[int, str]) -> int:
    """Bytes from an int or a string such as ``"64M"``, ``"2GiB"``, ``"512K"`` (binary units)."""
    if isinstance(value, bool):
        raise TypeError("a size must be an integer or a string like '64M'")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError(f"cannot read the size {value!r}: write bytes or a number with K, M, G or T (binary)")
        n = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if n < 1:
        raise ValueError(f"a size must be positive, got {value!r}")
    return n


@dataclass
class Limits:
    """Server limits (all positive).

    Attributes:
        max_key_bytes: largest evaluation-key upload (a public context).
        max_total_key_bytes: key bytes kept for all sessions together;
            least recently used sessions are evicted to make room.
        max_body_bytes: largest ciphertext request.
        max_sessions: sessions kept at once (least recently used evicted).
        session_ttl: seconds a session may stay idle before it expires.
        max_concurrent: products computed at once (each uses the core's threads).
        queue_timeout: seconds a request waits for a computing slot (then 503).
        body_timeout: seconds the server waits for the next chunk of a body (then 408).
        allow_insecure: accept toy (insecure) parameter sets; tests only.
    """

    max_key_bytes: int = 4 << 30
    max_total_key_bytes: int = 16 << 30
    max_body_bytes: int = 256 << 20
    max_sessions: int = 16
    session_ttl: float = 3600.0
    max_concurrent: int = 1
    queue_timeout: float = 300.0
    body_timeout: float = 60.0
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        for name in ("max_key_bytes", "max_total_key_bytes", "max_body_bytes", "max_sessions", "max_concurrent"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {v!r}")
        for name in ("session_ttl", "queue_timeout", "body_timeout"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"Limits.{name} must be a positive number of seconds, got {v!r}")
        if self.max_key_bytes > self.max_total_key_bytes:
            raise ValueError("Limits.max_key_bytes must not exceed max_total_key_bytes")

    def public(self) -> dict:
        """The limits as a JSON-ready dict (what /v1/model tells clients)."""
        return asdict(self)
