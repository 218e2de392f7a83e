"""The catalogue of benchmarked operations: names, groups, what each one times.

Every library adapter (hetensor and each peer) implements some of these names;
an op it cannot express is reported with the reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

#: Number of rotations in the hoisted-rotation op (steps 1..K).
HOISTED_K = 8


@dataclass(frozen=True)
class OpInfo:
    """One benchmarked operation."""

    name: str
    group: str
    description: str


OPS: List[OpInfo] = [
    OpInfo("ntt_limb", "ntt", "forward + inverse negacyclic NTT of one limb (N words, first prime)"),
    OpInfo("ntt_all", "ntt", "forward + inverse NTT of every limb of one polynomial at the top level"),
    OpInfo("encode", "encode", "encode N/2 real values into a plaintext at the top level"),
    OpInfo("encrypt", "encrypt", "encode + public-key encrypt N/2 real values (values -> ciphertext)"),
    OpInfo("decrypt", "encrypt", "decrypt + decode a fresh ciphertext (ciphertext -> values)"),
    OpInfo("add", "arith", "ciphertext + ciphertext"),
    OpInfo("mul_plain", "arith", "ciphertext x plaintext vector (values given; encode + multiply + rescale)"),
    OpInfo("mul_relin", "arith", "ciphertext x ciphertext + relinearize (no rescale)"),
    OpInfo("rescale", "arith", "rescale a relinearized product by the last prime"),
    OpInfo("mul_relin_rescale", "arith", "ciphertext x ciphertext + relinearize + rescale"),
    OpInfo("rotate", "rotate", "rotate the slots by 1 (one key switch)"),
    OpInfo("rotate_hoisted", "rotate", f"{HOISTED_K} rotations (steps 1..{HOISTED_K}) of one ciphertext, hoisted"),
    OpInfo("keygen_context", "keygen", "parameters + secret, public and relinearization keys (Context creation)"),
    OpInfo("keygen_public", "keygen", "public key generation alone"),
    OpInfo("keygen_relin", "keygen", "relinearization key generation alone"),
    OpInfo("keygen_galois", "keygen", "one Galois (rotation) key"),
]

# Matrix products (issue 5): the group "linalg", heavy at n16, so not part of "all".
from .ops_linalg import LINALG_OP_SPECS  # noqa: E402

OPS += [OpInfo(*spec) for spec in LINALG_OP_SPECS]

# Bootstrapping (issue 4): the group "boot", minutes of key generation at N = 2^16, so not
# part of "all". Each library runs its own bootstrappable parameters at the preset's ring
# degree; the note of each result says what they are (levels left, key memory, precision).
OPS.append(OpInfo("bootstrap", "boot", "bootstrap a full-slot ciphertext of values in [-1, 1] "
                  "(ModRaise, CoeffToSlot, EvalMod, SlotToCoeff) at the library's bootstrapping parameters"))
OPS.append(OpInfo("bootstrap_pair", "boot", "two real full-slot vectors in one complex-packed bootstrap "
                  "(a + i b, both real parts back: ctx.bootstrap_many); the time is for both"))
HEAVY = {spec[0] for spec in LINALG_OP_SPECS} | {"bootstrap", "bootstrap_pair"}

OP_NAMES: List[str] = [op.name for op in OPS]
OP_BY_NAME: Dict[str, OpInfo] = {op.name: op for op in OPS}
GROUPS: Dict[str, List[str]] = {}
for _op in OPS:
    GROUPS.setdefault(_op.group, []).append(_op.name)

#: Metrics reported once per library and preset (not timed).
METRICS: Dict[str, str] = {
    "ciphertext_bytes": "bytes",
    "public_key_bytes": "bytes",
    "relin_key_bytes": "bytes",
    "galois_key_bytes": "bytes",
    "precision_bits": "bits",
    "fresh_precision_bits": "bits",
    "ntt_limb_butterflies_per_s": "butterflies/s",
    "ntt_limb_peak_share": "fraction",
    "ntt_all_butterflies_per_s": "butterflies/s",
    "ntt_all_peak_share": "fraction",
}


def resolve_ops(spec: Sequence[str]) -> List[str]:
    """Expand op names and group names (``ntt``, ``keygen``, ``all``) in catalogue order.

    Raises ``ValueError`` naming the unknown entries and listing the valid ones.
    """
    wanted = set()
    unknown = []
    for item in spec:
        item = item.strip()
        if not item:
            continue
        if item == "all":
            wanted.update(n for n in OP_NAMES if n not in HEAVY)
        elif item in OP_BY_NAME:
            wanted.add(item)
        elif item in GROUPS:
            wanted.update(GROUPS[item])
        else:
            unknown.append(item)
    if unknown:
        raise ValueError(
            f"unknown op(s): {', '.join(unknown)}; valid ops: {', '.join(OP_NAMES)}; "
            f"groups: {', '.join(sorted(GROUPS))}, all"
        )
    if not wanted:
        raise ValueError("no ops selected")
    return [name for name in OP_NAMES if name in wanted]
