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

import numbers

from . import _core


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


__all__ = ["cache_limit", "cached_bytes", "release_cached", "set_cache_limit"]
