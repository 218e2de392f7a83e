"""Per-context caches: plans (no keys, no encoding) and encoded diagonals, with a byte budget;
and the working-memory bound of a map's evaluation.

Plans are pure functions of shapes, layouts and levels, so they are kept for
the context's lifetime. Encoded diagonals are kept while the context's budget
allows (default: a quarter of the memory available when the context first
needs one, at most 4 GiB); beyond it a map is streamed (encoded at every use).
A map's evaluation holds its baby-step rotations at once while they fit the
context's workspace budget (same default); beyond it they are made in chunks
(cpp/linalg/blockmap.hpp: the same result bit for bit).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Dict

import numpy as np

from .. import _core

MAX_DEFAULT_BUDGET = 4 << 30
_caches: "weakref.WeakKeyDictionary[Any, Dict[str, Any]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable; 8 GiB when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def default_budget(var: str = "HETENSOR_PLAINTEXT_BUDGET") -> int:
    """A quarter of the available memory, at most 4 GiB; the environment variable ``var``
    (bytes: HETENSOR_PLAINTEXT_BUDGET, HETENSOR_WORKSPACE_BUDGET) overrides it (test suites,
    small machines)."""
    env = os.environ.get(var)
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"{var} must be a number of bytes, got {env!r}") from None
        if value < 0:
            raise ValueError(f"{var} must be >= 0")
        return value
    return int(min(MAX_DEFAULT_BUDGET, available_memory() // 4))


def cache(ctx) -> Dict[str, Any]:
    """The cache record of ``ctx`` (made on first use)."""
    with _lock:
        c = _caches.get(ctx)
        if c is None:
            c = {"plans": {}, "maps": {}, "bytes": 0, "budget": None, "workspace": None, "weights": {},
                 "keys": "exact", "auto_keys": False}
            _caches[ctx] = c
        return c


def budget(ctx) -> int:
    c = cache(ctx)
    if c["budget"] is None:
        c["budget"] = default_budget()
    return int(c["budget"])


def set_plaintext_budget(ctx, nbytes: int) -> None:
    """Bytes of encoded diagonals ``ctx`` may keep cached (default: a quarter of the
    available memory, at most 4 GiB). Maps that do not fit are encoded on the fly
    at every use (slower, reported as ``encodes`` in the cost)."""
    nbytes = int(nbytes)
    if nbytes < 0:
        raise ValueError("the plaintext budget must be >= 0 bytes")
    cache(ctx)["budget"] = nbytes


def workspace(ctx) -> int:
    """Bytes of ciphertexts one map evaluation of ``ctx`` may hold at once."""
    c = cache(ctx)
    if c["workspace"] is None:
        c["workspace"] = default_budget("HETENSOR_WORKSPACE_BUDGET")
    return int(c["workspace"])


def set_workspace_budget(ctx, nbytes: int) -> None:
    """Bytes of ciphertexts one linear map of a product may hold at once (default: a quarter
    of the available memory, at most 4 GiB; the environment variable HETENSOR_WORKSPACE_BUDGET
    overrides the default; 0: no bound). A map whose baby-step rotations do not fit makes them
    in chunks and sums a few outputs at a time: the same result, more decompositions and
    possibly some rotations made twice (reported in the cost)."""
    nbytes = int(nbytes)
    if nbytes < 0:
        raise ValueError("the workspace budget must be >= 0 bytes (0: no bound)")
    cache(ctx)["workspace"] = nbytes


def clear_cache(ctx) -> None:
    """Drop every cached plan and encoded map of ``ctx``."""
    c = cache(ctx)
    c["plans"].clear()
    c["maps"].clear()
    c["weights"].clear()
    c["bytes"] = 0


def plan(ctx, key, build):
    """The plan stored under ``key``, built once."""
    plans = cache(ctx)["plans"]
    p = plans.get(key)
    if p is None:
        p = build()
        plans[key] = p
    return p


def encoded_bytes(ctx, plan, level: int) -> int:
    """Bytes the diagonals of ``plan`` take once encoded at ``level``."""
    return int(plan.diagonals) * (int(level) + 1) * int(ctx.ring_degree) * 8


def encode(ctx, plan, level: int, owner_bytes: list = None):
    """``plan`` encoded for ``level``: cached when the budget allows, else streamed."""
    c = cache(ctx)
    need = encoded_bytes(ctx, plan, level)
    keep = c["bytes"] + need <= budget(ctx)
    m = plan.encoded(ctx._engine, int(level), bool(keep))
    m.work_bytes = workspace(ctx)
    if keep:
        c["bytes"] += int(m.nbytes)
        if owner_bytes is not None:
            owner_bytes[0] += int(m.nbytes)
    return m


def encoded(ctx, key, plan, level: int):
    """The map of ``plan`` encoded at ``level``, kept under ``(key, level)``."""
    maps = cache(ctx)["maps"]
    k = (key, int(level))
    m = maps.get(k)
    if m is None:
        m = encode(ctx, plan, level)
        maps[k] = m
    m.work_bytes = workspace(ctx)  # the budget now (it may have changed since the map was encoded)
    return m


class EntryList:
    """The entry list of a block map (out[oc][os] <- in[ic][is]) built in parts; a scalar
    ciphertext index stands for every slot of its part. ``arrays()``: (oc, os, ic, is)."""

    def __init__(self) -> None:
        self._parts: tuple = ([], [], [], [])

    def add(self, oc, os_, ic, is_) -> None:
        n = np.size(os_)
        for part, v in zip(self._parts, (oc, os_, ic, is_)):
            part.append(np.full(n, v) if np.ndim(v) == 0 else v)

    def arrays(self) -> tuple:
        return tuple(np.concatenate(part) for part in self._parts)


def entry_plan(slots: int, in_cts: int, out_cts: int, oc, os_, ic, is_, coef=None):
    """A block map from an entry list: out[oc][os] += coef * in[ic][is]."""
    oc = np.asarray(oc, dtype=np.int64).reshape(-1)
    coef = np.ones(oc.size, dtype=np.complex128) if coef is None else np.asarray(coef, dtype=np.complex128).reshape(-1)
    return _core.linalg_entry_map(int(slots), int(in_cts), int(out_cts), oc,
                                  np.asarray(os_, dtype=np.int64).reshape(-1),
                                  np.asarray(ic, dtype=np.int64).reshape(-1),
                                  np.asarray(is_, dtype=np.int64).reshape(-1), coef)
