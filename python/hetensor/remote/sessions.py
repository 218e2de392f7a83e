"""Sessions: one client's evaluation keys, kept under a random id.

A session id is a bearer secret (128 random bits from the OS CSPRNG): whoever
holds it can run products under those keys, so logs carry only a short
digest of it (:attr:`Session.tag`). Sessions expire after ``ttl`` idle
seconds; a full store (count or key bytes) evicts the least recently used
idle session. Each session has its own lock: one product at a time per
session, sessions in parallel up to the server's computing slots.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple


def tag_of(session_id: str) -> str:
    """A short, non-reversible name of a session id for logs."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class Session:
    """A client's public context and the weights encoded for it."""

    def __init__(self, session_id: str, ctx: Any, key_bytes: int) -> None:
        self.id = session_id
        self.tag = tag_of(session_id)
        self.ctx = ctx
        self.key_bytes = int(key_bytes)
        self.created = self.last_used = time.monotonic()
        self.lock = threading.Lock()
        self.busy = 0  # requests in flight (never evicted while > 0)
        self.matrices: Dict[Tuple[str, str], Any] = {}

    def matrix(self, key: Tuple[str, str], make: Callable[[], Any]) -> Any:
        """The encoded weight ``key`` of this session's context (made once)."""
        m = self.matrices.get(key)
        if m is None:
            m = self.matrices[key] = make()
        return m


class SessionStore:
    """Thread-safe store of sessions with TTL expiry and LRU eviction."""

    def __init__(self, max_sessions: int, max_total_key_bytes: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions = int(max_sessions)
        self.max_total_key_bytes = int(max_total_key_bytes)
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._items: "OrderedDict[str, Session]" = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def key_bytes(self) -> int:
        """Key bytes held by all sessions."""
        with self._lock:
            return sum(s.key_bytes for s in self._items.values())

    def expire(self) -> List[str]:
        """Drop sessions idle for longer than the TTL; returns their tags."""
        now = self._clock()
        with self._lock:
            old = [sid for sid, s in self._items.items() if s.busy == 0 and now - s.last_used > self.ttl]
            return [self._items.pop(sid).tag for sid in old]

    def add(self, ctx: Any, key_bytes: int) -> Tuple[Session, List[str]]:
        """Store a new session; returns it and the tags of sessions evicted to make room.

        Raises ``RuntimeError`` when every session is busy and there is no room.
        """
        evicted = self.expire()
        sid = secrets.token_urlsafe(16)
        with self._lock:
            while self._items and (len(self._items) >= self.max_sessions or
                                   sum(s.key_bytes for s in self._items.values()) + key_bytes
                                   > self.max_total_key_bytes):
                idle = next((k for k, s in self._items.items() if s.busy == 0), None)
                if idle is None:
                    raise RuntimeError("the server is full: every session is busy; retry later")
                evicted.append(self._items.pop(idle).tag)
            s = Session(sid, ctx, key_bytes)
            s.last_used = self._clock()
            self._items[sid] = s
        return s, evicted

    def acquire(self, session_id: str) -> Optional[Session]:
        """The session (marked busy, moved to most recently used), or None if unknown or expired."""
        self.expire()
        with self._lock:
            s = self._items.get(session_id)
            if s is None:
                return None
            s.busy += 1
            s.last_used = self._clock()
            self._items.move_to_end(session_id)
            return s

    def release(self, s: Session) -> None:
        """End a request on ``s`` (see :meth:`acquire`)."""
        with self._lock:
            s.busy -= 1
            s.last_used = self._clock()

    def remove(self, session_id: str) -> Optional[Session]:
        """Forget a session (its keys are freed when no request holds it)."""
        with self._lock:
            return self._items.pop(session_id, None)

    def clear(self) -> int:
        """Forget every session; returns how many there were."""
        with self._lock:
            n = len(self._items)
            self._items.clear()
            return n
