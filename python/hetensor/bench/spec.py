"""The parameters of a hetensor preset, as the peers' adapters need them to match."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Tuple


@dataclass(frozen=True)
class PresetSpec:
    """Ring degree, modulus chain, dnum and security of one hetensor preset."""

    preset: str
    log_n: int
    levels: int
    first_prime_bits: int
    scale_bits: int
    special_prime_bits: int
    special_primes: int
    dnum: int
    hamming_weight: int
    insecure: bool
    he_standard_max_log_qp: int
    level_bits: Tuple[int, ...] = ()  # sizes of q_1 .. q_L when they differ (bootstrapping presets)

    @property
    def ring_degree(self) -> int:
        return 1 << self.log_n

    @property
    def slots(self) -> int:
        return self.ring_degree // 2

    @property
    def q_bits(self) -> List[int]:
        """Bit sizes of the ciphertext primes, first prime first."""
        return [self.first_prime_bits] + (list(self.level_bits) or [self.scale_bits] * self.levels)

    @property
    def p_bits(self) -> List[int]:
        """Bit sizes of the special (key-switching) primes.

        ``special_primes == 0`` means derived, as hetensor's Params does: enough primes
        for P to cover the largest digit of dnum digits."""
        count = self.special_primes
        if count == 0:
            q, size = self.q_bits, -(-(self.levels + 1) // self.dnum)
            widest = max(sum(q[i:i + size]) for i in range(0, len(q), size))
            count = -(-widest // self.special_prime_bits)
        return [self.special_prime_bits] * count

    @property
    def log_q(self) -> int:
        return sum(self.q_bits)

    @property
    def log_qp(self) -> int:
        return self.log_q + sum(self.p_bits)

    @property
    def secret(self) -> str:
        return "uniform ternary" if self.hamming_weight == 0 else f"sparse ternary h={self.hamming_weight}"


def preset_spec(name: str) -> PresetSpec:
    """Read a preset's literal from hetensor (no key generation)."""
    from hetensor import _core

    lit = _core.preset_literal(name)
    return PresetSpec(
        preset=name,
        log_n=int(lit.log_n),
        levels=int(lit.levels),
        first_prime_bits=int(lit.first_prime_bits),
        scale_bits=int(lit.scale_bits),
        special_prime_bits=int(lit.special_prime_bits),
        special_primes=int(lit.special_primes),
        dnum=int(lit.dnum),
        hamming_weight=int(lit.hamming_weight),
        insecure=bool(lit.allow_insecure),
        he_standard_max_log_qp=int(_core.he_standard_max_log_qp(int(lit.log_n))),
        level_bits=tuple(int(b) for b in getattr(lit, "level_bits", ())),
    )


@dataclass
class LibParams:
    """The parameters one library actually ran with, and how they differ from the preset."""

    ring_degree: int
    levels: int
    q_bits: List[int] | None
    p_bits: List[int] | None
    dnum: int | str | None
    scale_bits: int | None
    secret: str
    security: str
    threads_effective: int | str
    differences: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def log_qp(self) -> int | None:
        if self.q_bits is None or self.p_bits is None:
            return None
        return sum(self.q_bits) + sum(self.p_bits)

    def as_dict(self) -> Dict[str, Any]:
        """JSON record."""
        d = asdict(self)
        d["log_n"] = int(math.log2(self.ring_degree))
        d["log_qp"] = self.log_qp
        return d


def compare(spec: PresetSpec, got: LibParams) -> List[str]:
    """Human-readable differences between the preset and what a library ran with."""
    diffs: List[str] = []
    if got.ring_degree != spec.ring_degree:
        diffs.append(f"ring degree 2^{int(math.log2(got.ring_degree))} instead of 2^{spec.log_n}")
    if got.levels != spec.levels:
        diffs.append(f"{got.levels} levels instead of {spec.levels}")
    if got.q_bits is not None and got.q_bits != spec.q_bits:
        diffs.append(f"ciphertext primes {_bits(got.q_bits)} instead of {_bits(spec.q_bits)}")
    if got.p_bits is not None and got.p_bits != spec.p_bits:
        diffs.append(f"special primes {_bits(got.p_bits)} instead of {_bits(spec.p_bits)}")
    if isinstance(got.dnum, int) and got.dnum != spec.dnum:
        diffs.append(f"dnum {got.dnum} instead of {spec.dnum}")
    if got.scale_bits is not None and got.scale_bits != spec.scale_bits:
        diffs.append(f"scale 2^{got.scale_bits} instead of 2^{spec.scale_bits}")
    return diffs


def _bits(bits: List[int]) -> str:
    """Compact form of a list of prime sizes: [60, 40x7]."""
    parts: List[str] = []
    i = 0
    while i < len(bits):
        j = i
        while j < len(bits) and bits[j] == bits[i]:
            j += 1
        parts.append(f"{bits[i]}x{j - i}" if j - i > 1 else str(bits[i]))
        i = j
    return "[" + ", ".join(parts) + "]"
