"""What every library adapter provides (hetensor's own and each peer's)."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

from ..spec import LibParams, PresetSpec
from ..timing import Bench, Unavailable

BenchOrReason = Union[Bench, Unavailable]


@dataclass
class Probe:
    """Whether a library can be used here: status is ok, not_installed, not_importable or error."""

    status: str
    version: Optional[str] = None
    reason: str = ""

    def as_dict(self) -> Dict[str, Optional[str]]:
        return {"status": self.status, "version": self.version, "reason": self.reason}


class Session:
    """One library set up for one preset and thread count: keys made, inputs encrypted."""

    params: LibParams

    def bench(self, op: str) -> BenchOrReason:
        """How to time ``op``, or why this library cannot express it."""
        raise NotImplementedError

    def metrics(self) -> Dict[str, Optional[float]]:
        """Sizes in bytes and precision in bits (None where not measurable)."""
        return {}


class Adapter:
    """A library under test. ``thread_aware`` is False for single-threaded libraries."""

    name: str = "?"
    thread_aware: bool = True

    def probe(self) -> Probe:
        """Check that the library imports, without setting anything up."""
        raise NotImplementedError

    def open(self, spec: PresetSpec, threads: int) -> Session:
        """Set up (or reuse) a session for this preset and thread count."""
        raise NotImplementedError

    def release(self) -> None:
        """Free everything kept for the current preset."""


def probe_module(module: str, dist: str) -> Probe:
    """Import ``module`` and read the version of distribution ``dist``; classify failures."""
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = None
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        if version is None:
            return Probe("not_installed", None, f"'{dist}' is not installed (pip install {dist})")
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        return Probe("not_importable", version, f"'{dist}' {version} is installed but does not import on Python {py}: {exc}")
    except Exception as exc:  # a broken install must not stop the other libraries
        return Probe("error", version, f"importing {module} failed: {type(exc).__name__}: {exc}")
    if version is None:
        version = str(getattr(mod, "__version__", "unknown"))
    return Probe("ok", version, "")


def rng_values(slots: int, seed: int) -> "np.ndarray":  # noqa: F821
    """Deterministic real test values in [-1, 1]."""
    import numpy as np

    return np.random.default_rng(seed).uniform(-1.0, 1.0, slots)


def precision_bits(got: "np.ndarray", want: "np.ndarray") -> float:  # noqa: F821
    """-log2 of the largest absolute error (bits of precision)."""
    import numpy as np

    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64)[: len(want)] - want)))
    return float("inf") if err == 0.0 else float(-np.log2(err))


def unavailable(reason: str) -> Unavailable:
    """Shorthand used by the adapters."""
    return Unavailable(reason)


__all__: List[str] = [
    "Adapter", "Bench", "BenchOrReason", "Probe", "Session", "Unavailable",
    "precision_bits", "probe_module", "rng_values", "unavailable",
]
