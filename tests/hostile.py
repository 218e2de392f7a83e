"""Hostile inputs for the loaders (shared by test_format_hostile.py and the
fuzz harness): valid objects of every type at N = 2^10, and mutations of them
that re-seal the header (length, checksum) so that they reach the parsers."""

from __future__ import annotations

import struct
from typing import Callable, Dict, List, Tuple

import numpy as np

import hetensor as ht
from hetensor import _core

HEADER = int(_core.FORMAT_HEADER_BYTES)
# header offsets: magic 0, version 8, type 10, flags 12, param hash 16, key id 24, length 32, checksum 40
OFF_VERSION, OFF_TYPE, OFF_FLAGS, OFF_HASH, OFF_KEY, OFF_LEN, OFF_SUM = 8, 10, 12, 16, 24, 32, 40


def small_context(seed: int = 3) -> ht.Context:
    """N = 2^10, two levels, rotation and conjugation keys (insecure, for tests)."""
    return ht.Context.from_params(log_n=10, levels=2, scale_bits=36, first_prime_bits=45, dnum=2,
                                  special_prime_bits=45, allow_insecure=True, rotations=[1], conjugation=True,
                                  seed=seed)


def valid_objects(ctx: ht.Context) -> Dict[str, bytes]:
    x = np.linspace(-1, 1, 40)
    pub = ctx.public()
    return {
        "ciphertext": ctx.encrypt(x).to_bytes(),
        "ciphertext-seeded": ctx.encrypt(x, symmetric=True).to_bytes(),
        "ciphertext-matrix": ctx.encrypt(x.reshape(5, 8), layout="matrix").to_bytes(),
        "plaintext": ctx.encode(x).to_bytes(),
        "plain-matrix": ht.PlainMatrix(ctx, x.reshape(5, 8)).to_bytes(),
        "public-context": pub.to_bytes(),
        "public-context-full": pub.to_bytes(compress=False),
        "private-context": ctx.to_bytes(include_secret_key=True),
        "params": ctx.to_bytes(params_only=True),
    }


def reseal(data: bytes) -> bytes:
    """The header's length and checksum made to match the (mutated) payload."""
    b = bytearray(data)
    if len(b) < HEADER:
        return bytes(b)
    payload = bytes(b[HEADER:])
    struct.pack_into("<QQ", b, OFF_LEN, len(payload), int(_core.format_checksum(payload)))
    return bytes(b)


def put(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def batch_attacks(data: bytes) -> List[Tuple[str, bytes]]:
    """Sealed ciphertext/plaintext records with hostile metadata.
    Payload: i32 batch | i32 size | i32 level | f64 scale | f64 bound | u32 attrs length | attrs | u8 seeded | data."""
    p = HEADER
    (attrs_len,) = struct.unpack_from("<I", data, p + 28)
    seeded_at = p + 32 + attrs_len
    out = [
        ("batch 2^31-1", put(data, p, "<i", 2**31 - 1)),
        ("batch 0", put(data, p, "<i", 0)),
        ("batch -1", put(data, p, "<i", -1)),
        ("size 4", put(data, p + 4, "<i", 4)),
        ("size 0", put(data, p + 4, "<i", 0)),
        ("level 99", put(data, p + 8, "<i", 99)),
        ("level -1", put(data, p + 8, "<i", -1)),
        ("scale nan", put(data, p + 12, "<d", float("nan"))),
        ("scale 0", put(data, p + 12, "<d", 0.0)),
        ("scale -1", put(data, p + 12, "<d", -1.0)),
        ("bound inf", put(data, p + 20, "<d", float("inf"))),
        ("attrs length 2^32-1", put(data, p + 28, "<I", 2**32 - 1)),
        ("seeded flag 7", put(data, seeded_at, "<B", 7)),
        ("residue 2^64-1", put(data, seeded_at + 1, "<Q", 2**64 - 1)),
        ("attrs not json", data[: p + 32] + b"{" * attrs_len + data[p + 32 + attrs_len:]),
        ("trailing byte", data + b"\0"),
        ("payload cut", data[:-8]),
    ]
    return [(name, reseal(d)) for name, d in out]


def context_attacks(data: bytes) -> List[Tuple[str, bytes]]:
    """Sealed context records with hostile sizes. Payload starts with the parameters:
    u32 name length | name | 8 x i32 | u32 level sizes | ... ."""
    p = HEADER
    (name_len,) = struct.unpack_from("<I", data, p)
    fields = p + 4 + name_len
    out = [
        ("name length 2^32-1", put(data, p, "<I", 2**32 - 1)),
        ("log_n 30", put(data, fields, "<i", 30)),
        ("levels 2^31-1", put(data, fields + 12, "<i", 2**31 - 1)),
        ("level sizes 2^32-1", put(data, fields + 32, "<I", 2**32 - 1)),
        ("payload cut in half", data[: HEADER + (len(data) - HEADER) // 2]),
        ("trailing byte", data + b"\0"),
        # found by the fuzzer: a name that is not UTF-8 failed as UnicodeDecodeError
        ("name not ascii", data[: p + 4] + bytes([0xD7]) * name_len + data[p + 4 + name_len:]),
    ]
    if int.from_bytes(data[OFF_TYPE:OFF_TYPE + 2], "little") == 2:  # a context: keys follow the parameters
        out.append(("residue 2^64-1 in the first key", put(data, first_key_word(data), "<Q", 2**64 - 1)))
    return [(name, reseal(d)) for name, d in out]


def first_key_word(data: bytes) -> int:
    """Offset of the first residue after the parameters (the secret key or the public key's b)."""
    p = HEADER
    (name_len,) = struct.unpack_from("<I", data, p)
    p += 4 + name_len + 32
    (nbits,) = struct.unpack_from("<I", data, p)
    p += 4 + 4 * nbits + 8 + 1
    (nq,) = struct.unpack_from("<I", data, p)
    p += 4 + 8 * nq
    (np_,) = struct.unpack_from("<I", data, p)
    p += 4 + 8 * np_
    has_secret = data[p]
    return p + 1 if has_secret else p + 2


def header_attacks(data: bytes) -> List[Tuple[str, bytes]]:
    """Unsealed header damage: each must fail before the payload is parsed."""
    return [
        ("empty", b""),
        ("magic only", data[:8]),
        ("header only", data[:HEADER]),
        ("one byte short", data[:-1]),
        ("bad magic", b"HETENSOX" + data[8:]),
        ("version 1", put(data, OFF_VERSION, "<H", 1)),
        ("version 3", put(data, OFF_VERSION, "<H", 3)),
        ("version 0", put(data, OFF_VERSION, "<H", 0)),
        ("type 0", put(data, OFF_TYPE, "<H", 0)),
        ("type 99", put(data, OFF_TYPE, "<H", 99)),
        ("unknown flag", put(data, OFF_FLAGS, "<I", 1 << 20)),
        ("length 2^63", put(data, OFF_LEN, "<Q", 2**63)),
        ("length 2^64-1", put(data, OFF_LEN, "<Q", 2**64 - 1)),
        ("checksum", put(data, OFF_SUM, "<Q", 12345)),
        ("parameter hash", reseal(put(data, OFF_HASH, "<Q", 1))),
    ]


def bit_flips(data: bytes, count: int = 24) -> List[Tuple[str, bytes]]:
    """Single bit flips spread over header and payload (checksum left stale)."""
    positions = sorted(set(list(range(0, HEADER, 3)) + list(np.linspace(HEADER, len(data) - 1, count, dtype=int))))
    out = []
    for pos in positions:
        b = bytearray(data)
        b[pos] ^= 1 << (pos % 8)
        out.append((f"bit flip at {pos}", bytes(b)))
    return out


def load_call(ctx: ht.Context) -> Callable[[bytes], object]:
    return lambda data: ht.load(data, ctx, allow_insecure=True)
