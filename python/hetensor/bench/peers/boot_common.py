"""What the peers' ``bootstrap`` op (group ``boot``, issue 4) shares: memory probes,
the boot-only session of bootstrapping presets, and the note every record carries.

Peers cannot run hetensor's bootstrappable chain, so each runs its own
recommended bootstrapping parameters at the preset's ring degree (see
orion_boot.py and desilofhe_boot.py). Their key generation takes minutes and
gigabytes at N = 2^16, so everything is made once, when the op is first asked
for, and the figures that are not timings (key generation time, key memory,
peak memory, precision, levels left, parameters) go into the record's note.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from ..spec import LibParams, PresetSpec
from ..timing import Bench
from .base import BenchOrReason, Session, precision_bits, unavailable

#: Seed of the bootstrapped input (uniform in [-1, 1]); ops_boot.py uses the same one for hetensor.
BOOT_INPUT_SEED = 7


def _status_bytes(name: str) -> Optional[int]:
    """A /proc/self/status field (VmRSS, VmHWM) in bytes, or None off Linux."""
    try:
        with open("/proc/self/status", "r", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Resident set size now (the lifetime peak where /proc is missing)."""
    now = _status_bytes("VmRSS")
    return now if now is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """High-water mark of the resident set so far (VmHWM, else ru_maxrss)."""
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def cpu_seconds() -> float:
    """User + system CPU time of the process, all threads (Go's and OpenMP's included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def gb(n: Optional[float]) -> str:
    """Bytes as decimal gigabytes, the unit of the issue's reference figures."""
    return "?" if n is None else f"{n / 1e9:.2f} GB"


def is_boot_preset(spec: PresetSpec) -> bool:
    """True for hetensor's bootstrapping presets (n16-boot, toy-boot-insecure).

    At these presets a peer runs only ``bootstrap``: their chains (mixed prime
    sizes, derived special primes) are hetensor's bootstrapping circuit, which
    a peer cannot run, and the peer's own bootstrapping keys need the memory.
    """
    try:
        from hetensor.boot import BOOT_PRESETS
    except ImportError:  # an older hetensor: go by the name
        return "boot" in spec.preset
    return spec.preset in BOOT_PRESETS


@dataclass
class BootFigures:
    """What one peer's bootstrapping setup measured (filled by its boot module)."""

    library: str
    parameters: str                  # log Q / log P chain, secret, dnum, circuit
    security: str
    keygen_s: float                  # the bootstrapping keys (and the evaluator that holds them)
    key_bytes: Optional[float]
    key_bytes_method: str            # "exact (...)" or "estimate: RSS growth ..."
    setup_s: float = 0.0             # scheme and ordinary keys made before the bootstrapping keys
    peak_rss_setup: Optional[int] = None
    bits: Optional[float] = None      # against the float64 input
    extra_bits: Dict[str, float] = field(default_factory=dict)  # other references, by name
    levels_left: Optional[int] = None
    input_level: Optional[int] = None
    cpu_wall: Optional[float] = None  # CPU seconds / wall seconds over the timed calls
    notes: List[str] = field(default_factory=list)

    def note(self) -> str:
        """The record's note: every figure the op table has no column for."""
        bits = "?" if self.bits is None else f"{self.bits:.1f}"
        extra = "".join(f" ({v:.1f} vs {k})" for k, v in self.extra_bits.items())
        parts = [
            f"{self.library}: {bits} bits vs the float64 input{extra}",
            f"{'?' if self.levels_left is None else self.levels_left} levels left "
            f"(input at level {'?' if self.input_level is None else self.input_level})",
            f"bootstrapping key generation {self.keygen_s:.1f} s (+ {self.setup_s:.1f} s scheme and ordinary keys)",
            f"key memory {gb(self.key_bytes)} ({self.key_bytes_method})",
            f"peak RSS through key generation {gb(self.peak_rss_setup)} (the op's own peak: peak_rss_bytes)",
        ]
        if self.cpu_wall is not None:
            parts.append(f"CPU/wall {self.cpu_wall:.2f} over the timed calls")
        parts += [f"parameters: {self.parameters}", f"security: {self.security}"]
        parts += self.notes
        return "; ".join(parts)


class BootCase:
    """One peer's bootstrapping, set up once: subclasses make keys and the input, and
    implement ``bootstrap_once`` (the timed call), ``check`` and ``drop``."""

    figures: BootFigures

    def bootstrap_once(self):
        raise NotImplementedError

    def check(self, out) -> None:
        """Untimed, on the first result: precision and levels left into ``figures``."""
        raise NotImplementedError

    def drop(self, out) -> None:
        """Free a result (libraries with handles)."""

    def bench(self, finalize: Optional[Callable[[], None]] = None) -> Bench:
        """The Bench of the op; the note is completed after the samples (precision, CPU use)."""
        state = {"cpu": 0.0, "wall": 0.0, "t": 0.0, "c": 0.0}

        def setup():
            state["t"], state["c"] = time.perf_counter(), cpu_seconds()

        def cleanup(_arg, out) -> None:
            state["wall"] += time.perf_counter() - state["t"]
            state["cpu"] += cpu_seconds() - state["c"]
            if self.figures.bits is None:
                self.check(out)
            self.drop(out)

        bench = Bench(run=lambda _: self.bootstrap_once(), setup=setup, cleanup=cleanup, note=self.figures.note())

        def done() -> None:
            if state["wall"] > 0:
                self.figures.cpu_wall = state["cpu"] / state["wall"]
            bench.note = self.figures.note()
            if finalize is not None:
                finalize()

        bench.finalize = done
        return bench


def measure_bits(got: np.ndarray, want: np.ndarray) -> float:
    """precision_bits, finite (an exact result counts as 64 bits)."""
    b = precision_bits(got, want)
    return b if math.isfinite(b) else 64.0


class BootOnlySession(Session):
    """A peer at a bootstrapping preset: ``bootstrap`` only, with the peer's own parameters.

    ``make_bench`` returns the Bench (or the reason there is none); it is called
    once, on the first request, so opening the session costs nothing.
    """

    def __init__(self, library: str, spec: PresetSpec, threads: int, params: LibParams,
                 make_bench: Callable[[], BenchOrReason]) -> None:
        self.library = library
        self.spec = spec
        self.threads = threads
        self.params = params
        self._make_bench = make_bench

    def bench(self, op: str) -> BenchOrReason:
        if op == "bootstrap":
            return self._make_bench()
        return unavailable(
            f"{self.spec.preset} is hetensor's bootstrapping chain: {self.library} runs only 'bootstrap' here, "
            f"with its own bootstrappable parameters; compare the other ops at a non-boot preset (e.g. n16)")

    def metrics(self) -> Dict[str, Optional[float]]:
        return {}  # the bootstrap's precision and sizes are in the op's note


__all__ = [
    "BOOT_INPUT_SEED", "BootCase", "BootFigures", "BootOnlySession", "cpu_seconds", "gb", "is_boot_preset",
    "measure_bits", "peak_rss_bytes", "rss_bytes",
]
