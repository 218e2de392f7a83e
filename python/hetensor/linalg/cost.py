"""What one linalg operation cost (:class:`MatmulCost`) and the last record per thread."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from . import runmode

@dataclass
class MatmulCost:
    """What one operation cost, counted per ciphertext.

    ``rotations`` are slot rotations (one key switch each; ``hoisted`` of them
    reused a decomposition), ``relinearizations`` the other key switches;
    ``plain_mults`` ciphertext x plaintext products, ``ct_mults``
    ciphertext x ciphertext (tensor) products; ``levels`` the levels consumed
    (the lower input level minus the output level); ``rotation_steps`` the
    distinct rotation keys used.
    """

    op: str = ""
    method: str = ""
    rotations: int = 0
    hoisted: int = 0
    decompositions: int = 0
    relinearizations: int = 0
    plain_mults: int = 0
    ct_mults: int = 0
    rescales: int = 0
    encodes: int = 0
    levels: int = 0
    rotation_steps: List[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def key_switches(self) -> int:
        return self.rotations + self.relinearizations

    def add(self, counts: Dict[str, int]) -> None:
        self.rotations += int(counts.get("rotations", 0))
        self.hoisted += int(counts.get("hoisted", 0))
        self.decompositions += int(counts.get("decompositions", 0))
        self.relinearizations += int(counts.get("relinearizations", 0))
        self.plain_mults += int(counts.get("plain_mults", 0))
        self.ct_mults += int(counts.get("tensor_products", 0))
        self.rescales += int(counts.get("rescales", 0))
        self.encodes += int(counts.get("encodes", 0))

    def steps(self, steps: Sequence[int], slots: int) -> None:
        have = set(self.rotation_steps)
        have.update(int(s) % slots for s in steps if int(s) % slots)
        self.rotation_steps = sorted(have)

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["key_switches"] = self.key_switches
        return d

    def __str__(self) -> str:
        return (
            f"{self.op}[{self.method}]: {self.rotations} rotations ({self.hoisted} hoisted), "
            f"{self.relinearizations} relinearizations, {self.plain_mults} pt-mults, {self.ct_mults} ct-mults, "
            f"{self.levels} level(s), {len(self.rotation_steps)} rotation keys"
        )


_tls = threading.local()


def last_cost() -> Optional[MatmulCost]:
    """The cost record of the last linalg operation in this thread (None before any)."""
    return getattr(_tls, "cost", None)


def publish(cost: MatmulCost) -> MatmulCost:
    """Make ``cost`` the thread's last record (not while planning: a plan costs nothing)."""
    if not runmode.planning():
        _tls.cost = cost
    return cost
