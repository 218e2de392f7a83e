"""Timing: median / min / max over repeats after warm-up, with per-op peak memory."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from .memory import PeakMemory


@dataclass
class Bench:
    """How to time one op for one library.

    ``setup()`` runs before every sample, outside the timer, and returns the
    argument of ``run``; ``cleanup(arg, result)`` runs after it, also untimed.
    ``note`` says how the library expresses the op when it differs from the
    catalogue's description. Each sample is divided by ``divisor`` (a call
    that does the op twice, say). ``finalize()`` runs once after all samples.
    """

    run: Callable[[Any], Any]
    setup: Callable[[], Any] = lambda: None
    cleanup: Optional[Callable[[Any, Any], None]] = None
    note: str = ""
    divisor: int = 1
    finalize: Optional[Callable[[], None]] = None


@dataclass
class Unavailable:
    """An op a library cannot express, with the reason."""

    reason: str


@dataclass
class Stats:
    """Result of timing one op: seconds per call."""

    samples: List[float]
    warmup: int
    memory: Dict[str, int] = field(default_factory=dict)
    memory_method: str = ""

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def min(self) -> float:
        return float(min(self.samples))

    @property
    def max(self) -> float:
        return float(max(self.samples))

    @property
    def mean(self) -> float:
        return float(statistics.fmean(self.samples))

    def as_dict(self) -> Dict[str, Any]:
        """JSON record (times in seconds)."""
        return {
            "status": "ok",
            "unit": "s",
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "repeat": len(self.samples),
            "warmup": self.warmup,
            "samples": [float(s) for s in self.samples],
            **self.memory,
            "memory_method": self.memory_method,
        }


def measure(bench: Bench, repeat: int, warmup: int = 1) -> Stats:
    """Time ``bench.run`` ``repeat`` times after ``warmup`` untimed calls.

    The garbage collector is paused while a sample runs, so a collection
    triggered by the harness does not land inside a figure.
    """
    if repeat < 1:
        raise ValueError("repeat must be >= 1")
    samples: List[float] = []
    with PeakMemory() as mem:
        for i in range(warmup + repeat):
            arg = bench.setup()
            gc_was = gc.isenabled()
            gc.disable()
            try:
                t0 = time.perf_counter()
                out = bench.run(arg)
                t1 = time.perf_counter()
            finally:
                if gc_was:
                    gc.enable()
            if bench.cleanup is not None:
                bench.cleanup(arg, out)
            del out, arg
            if i >= warmup:
                samples.append((t1 - t0) / bench.divisor)
        if bench.finalize is not None:
            bench.finalize()
    return Stats(samples=samples, warmup=warmup, memory=mem.as_dict(), memory_method=mem.method)
