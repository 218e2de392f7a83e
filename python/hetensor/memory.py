"""The core's buffer cache: how much freed memory it keeps, and giving it back.

Ring buffers freed by the core are kept by size and handed out again, because
fresh pages cost page faults and kernel zeroing on every multiply. The cache
is capped (1 GiB by default); a process that has finished a large computation
and goes on with small ones can give the memory back:

>>> import hetensor as ht
>>> ht.memory.release_cached()
>>> ht.memory.cached_bytes()
0
"""

from __future__ import annotations

import contextlib
import numbers
import threading
from typing import Iterator

from . import _core

_cap_lock = threading.Lock()
_cap_users = 0
_cap_saved = 0


def cached_bytes() -> int:
    """Bytes of freed ring buffers the core keeps for reuse."""
    return int(_core.pool_cached_bytes())


def cache_limit() -> int:
    """The most bytes of freed buffers the core keeps (see :func:`set_cache_limit`)."""
    return int(_core.pool_cache_limit())


def set_cache_limit(limit_bytes: int) -> int:
    """Cap the cache of freed buffers at ``limit_bytes`` and return the previous cap.

    Blocks above the new cap are freed at once. ``0`` disables the cache (every
    buffer goes back to the system allocator: lowest memory, slower hot paths).
    """
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, numbers.Integral):
        raise TypeError(f"set_cache_limit needs an integer byte count, got {limit_bytes!r}")
    if limit_bytes < 0:
        raise ValueError(f"set_cache_limit needs a byte count >= 0, got {limit_bytes}")
    previous = cache_limit()
    _core.pool_set_cache_limit(min(int(limit_bytes), 2**63 - 1))
    return previous


def release_cached() -> None:
    """Free every cached buffer and return the allocator's free pages to the system.

    Buffers still in use (live ciphertexts, keys, encoded weights) are not
    touched; resident memory drops by what was cached.
    """
    _core.pool_release_cached()


@contextlib.contextmanager
def capped(limit_bytes: int) -> Iterator[None]:
    """Cap the cache at ``limit_bytes`` (if it is higher) while the block runs.

    Bootstrapping runs under ``capped(hetensor.boot.BOOT_CACHE_LIMIT)``. A
    lower cap gives freed buffers back to the system sooner, and buffers made
    later need fresh pages, which the kernel zeroes (a request that no cached
    buffer fits is built from the cached buffers' pages, so the cache itself
    does not raise the peak). Nested and
    concurrent blocks share one cap, the first one's; the previous cap comes
    back when the last block leaves (a cap set inside such a block is then
    overwritten).
    """
    global _cap_users, _cap_saved
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, numbers.Integral) or limit_bytes < 0:
        raise ValueError(f"capped needs a byte count >= 0, got {limit_bytes!r}")
    with _cap_lock:
        if _cap_users == 0:
            _cap_saved = cache_limit()
            if _cap_saved > limit_bytes:
                _core.pool_set_cache_limit(int(limit_bytes))
        _cap_users += 1
    try:
        yield
    finally:
        with _cap_lock:
            _cap_users -= 1
            if _cap_users == 0 and cache_limit() < _cap_saved:
                _core.pool_set_cache_limit(_cap_saved)


__all__ = ["cache_limit", "cached_bytes", "capped", "release_cached", "set_cache_limit"]
