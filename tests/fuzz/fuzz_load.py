"""Atheris harness over every loader of the binary format.

    python tests/fuzz/fuzz_load.py -max_total_time=600        # bounded run (CI)
    python tests/fuzz/fuzz_load.py -atheris_runs=100000

Structure-aware: the fuzzer's bytes drive a FuzzedDataProvider that picks a
valid object (every type, N = 2^10), applies up to eight edits (bit flips,
hostile u32/u64 values such as 0, 2^31 - 1 and 2^64 - 1 at positions biased
towards the metadata, truncation, inserted bytes), optionally re-seals the
header (length and checksum recomputed, so the edits reach the parsers
behind the checksum), and feeds the result to one loader (hetensor.load or a
core loader: context, ciphertext, plaintext, blob, parameters), checked or
unsafe. Any exception other than FormatError or SecurityError, and any
crash, is a finding. The C++ core is not instrumented for coverage (the
structure of the edits, not coverage, drives the search there).
"""

from __future__ import annotations

import os
import sys

import atheris
import numpy  # noqa: F401  (imported before instrumentation: only hetensor is instrumented)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports():
    import hetensor as ht
    from hetensor import _core
    from hostile import reseal, small_context, valid_objects

CTX = small_context()
ENG = CTX._engine
LOADERS = [
    lambda b, unsafe: ht.load(b, CTX, unsafe=unsafe, allow_insecure=True),
    lambda b, unsafe: _core.deserialize_context(b, True, unsafe),
    lambda b, unsafe: _core.deserialize_ciphertext(ENG, b, unsafe),
    lambda b, unsafe: _core.deserialize_plaintext(ENG, b, unsafe),
    lambda b, unsafe: _core.deserialize_blob(b, unsafe),
    lambda b, unsafe: _core.deserialize_params(b, unsafe),
]


SEEDS = list(valid_objects(CTX).values()) + [bytes(_core.serialize_params(ENG))]
U32 = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
U64 = [0, 1, 2**31 - 1, 2**32, 2**62, 2**63, 2**64 - 1]


def mutate(fdp: "atheris.FuzzedDataProvider", buf: bytearray) -> bytearray:
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        if not buf:
            break
        near = fdp.ConsumeBool()  # the metadata sits in the first bytes of every record
        pos = fdp.ConsumeIntInRange(0, min(len(buf) - 1, 1023) if near else len(buf) - 1)
        op = fdp.ConsumeIntInRange(0, 4)
        if op == 0:
            buf[pos] ^= 1 << fdp.ConsumeIntInRange(0, 7)
        elif op == 1:
            v = fdp.PickValueInList(U32) if fdp.ConsumeBool() else fdp.ConsumeInt(4) & 0xFFFFFFFF
            buf[pos:pos + 4] = v.to_bytes(4, "little")
        elif op == 2:
            v = fdp.PickValueInList(U64) if fdp.ConsumeBool() else fdp.ConsumeInt(8) & (2**64 - 1)
            buf[pos:pos + 8] = v.to_bytes(8, "little")
        elif op == 3:
            del buf[pos:]
        else:
            buf[pos:pos] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 64))
    return buf


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    body = bytes(mutate(fdp, bytearray(SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)])))
    if fdp.ConsumeBool():
        body = reseal(body)
    unsafe = fdp.ConsumeBool()
    try:
        LOADERS[fdp.ConsumeIntInRange(0, len(LOADERS) - 1)](body, unsafe)
    except (ht.FormatError, ht.SecurityError):
        pass


def main() -> None:
    atheris.Setup(list(sys.argv), one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
