"""Data parallelism inside one process: a batch of encrypted tensors sharded
over a pool of threads, results gathered in order.

The core releases the GIL during every heavy operation and its keys are
read-only while they are used, so threads that work on different
ciphertexts run at the same time and each gives exactly the result of the
serial run (the operations are deterministic: same inputs, same residues).
Each call may itself use the core's OpenMP threads (:func:`hetensor.set_num_threads`):
with many workers, one core thread per worker avoids oversubscription.
Across processes and machines use :mod:`hetensor.distributed`.
"""

from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The number of processors this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def map(fn: Callable[[T], R], items: Sequence[T], *, workers: Optional[int] = None) -> List[R]:
    """``[fn(x) for x in items]`` computed by ``workers`` threads (default:
    :func:`default_workers`), in the order of ``items``.

    Items are handed out one at a time, so uneven costs balance. An exception
    raised by ``fn`` is raised here (the one of the earliest failing item); items
    not started by then are dropped, those running finish first.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if isinstance(items, (str, bytes)) or not hasattr(items, "__len__"):
        raise TypeError("items must be a sequence (a list or tuple of CipherTensors, for example)")
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    items = list(items)
    workers = min(int(workers), max(1, len(items)))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hetensor") as pool:
        futures = [pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()  # items not started yet are dropped
            raise
