"""Key storage (issue 10): the AES-256-CTR seed expansion, compact keys (b
halves + seeds, a regenerated at each key switch) and keys trimmed to the
levels a bootstrap uses, at toy-boot-insecure against float64."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core
from hostile import reseal


def bits(got, ref) -> float:
    err = float(np.max(np.abs(np.asarray(got) - ref)))
    return np.inf if err == 0 else -np.log2(err)


# -- the PRG -------------------------------------------------------------------------

def test_aes256_known_answer():
    """FIPS 197, appendix C.3 (AES-256)."""
    key = bytes(range(32))
    block = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert _core.aes256_encrypt_block(key, block).hex() == "8ea2b7ca516745bfeafc49904b496089"


@pytest.mark.parametrize("path", ["best", "aesni", "portable"])
def test_ctr_blocks_are_the_documented_counters(path):
    """Block k of stream s encrypts k (u64 LE) | s (u32 LE) | 'htA1', on every path."""
    key = bytes(range(100, 132))
    words = _core.aes256_ctr(key, 7, 1000, 19, path)
    for k in range(19):
        blk = struct.pack("<QI", 1000 + k, 7) + b"htA1"
        want = np.frombuffer(_core.aes256_encrypt_block(key, blk), dtype="<u8")
        assert list(words[2 * k:2 * k + 2]) == list(want)


def test_vaes_aes_ni_and_portable_paths_agree():
    """The CPU's fastest path (VAES: 16-block groups; AES-NI: 8), AES-NI alone and
    the portable C++ give the same words, tails included."""
    key = bytes(range(5, 37))
    slow = _core.aes256_ctr(key, 3, 5, 4099, "portable")
    for path in ("best", "aesni"):
        assert np.array_equal(_core.aes256_ctr(key, 3, 5, 4099, path), slow)
    assert len(set(slow.tolist())) == slow.size        # no repeated words (a counter reused would repeat)


def test_compact_keys_argument_is_checked():
    with pytest.raises(TypeError, match="compact_keys"):
        ht.Context.from_preset("toy-insecure", compact_keys="yes")
    ctx = ht.Context.from_preset("toy-insecure", seed=1)
    with pytest.raises(TypeError, match="compact_keys"):
        ctx.compact_keys = 1


def test_aes_inputs_are_checked():
    with pytest.raises(ValueError, match="32 bytes"):
        _core.aes256_ctr(b"short", 0, 0, 1)
    with pytest.raises(ValueError, match="path must be"):
        _core.aes256_ctr(bytes(32), 0, 0, 1, "fast")
    with pytest.raises(ValueError, match="16-byte block"):
        _core.aes256_encrypt_block(bytes(32), b"x")


# -- compact and trimmed bootstrapping keys -----------------------------------------------

@pytest.fixture(scope="module")
def pair():
    """The same seeded toy-boot context with expanded and with compact keys."""
    full = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=5, compact_keys=False)
    compact = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=5, compact_keys=True)
    assert compact.compact_keys and not ht.Context.from_preset("toy-insecure", seed=1).compact_keys
    return full, compact


def _key_bytes(ctx, compact: bool) -> int:
    """What the keys must take: public key expanded, the relinearization key
    (compact with the others), every Galois key digits(level) x halves x
    (level + 1 + alpha) x N words, the encapsulation keys (4 N words + one
    switching key at the top)."""
    eng = ctx._engine
    n, top, alpha, dnum = ctx.ring_degree, ctx.max_level, len(eng.p), eng.dnum
    size = -(-(top + 1) // dnum)

    def switch(level: int, halves: int) -> int:
        return (level // size + 1) * halves * (level + 1 + alpha) * n * 8

    halves = 1 if compact else 2
    total = 2 * (top + 1 + alpha) * n * 8 + switch(top, halves)
    total += sum(switch(lv, halves) for lv in eng.galois_key_levels().values())
    return total + 4 * n * 8 + switch(top, halves)


def test_compact_keys_bootstrap_bit_for_bit(pair):
    """Regenerated a halves are the stored ones: the same seed gives the same
    bootstrap output word for word, and it holds the values to >= 20 bits."""
    full, compact = pair
    x = np.random.default_rng(3).uniform(-1, 1, full.slots)
    outs = []
    for ctx in pair:
        low = (ctx.encrypt(x) * 1.0).level_to(ctx.bootstrap_contract.input_level)
        outs.append(ctx.decrypt(low.bootstrap()))
    assert np.array_equal(outs[0], outs[1])
    assert bits(outs[1], x) >= 20
    assert compact.compact_keys and not full.compact_keys
    assert full.key_bytes() == _key_bytes(full, False)
    assert compact.key_bytes() == _key_bytes(compact, True)
    assert compact.key_bytes() < 0.6 * full.key_bytes()


def test_keys_are_trimmed_to_the_levels_the_bootstrap_uses(pair):
    full, _ = pair
    boot = full._bootstrapper
    want = boot.key_levels()
    stc_only = [s for s, lv in want.items() if lv < boot.eval_mod_level]
    assert stc_only, "SlotToCoeff has steps of its own at this size"
    got = {int(g): lv for g, lv in full._engine.galois_key_levels().items()}
    conj = 2 * full.ring_degree - 1
    assert got.pop(conj) == boot.eval_mod_level
    assert sorted(got.values()) == sorted(want.values())


def test_a_trimmed_key_refuses_higher_levels_and_can_be_widened():
    ctx = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=9, compact_keys=True)
    boot = ctx._bootstrapper
    step = min(s for s, lv in boot.key_levels().items() if lv < boot.eval_mod_level)
    x = np.random.default_rng(4).uniform(-1, 1, ctx.slots)
    eng = ctx._engine
    ct = eng.encrypt(np.asarray(x, dtype=complex).reshape(1, -1), False, ctx.max_level)  # above the fresh level
    with pytest.raises(ValueError, match=r"made for levels <= \d+.*generate_rotation_keys"):
        eng.rotate(ct, step)
    before = ctx.key_bytes()
    ctx.generate_rotation_keys([step])
    assert ctx.key_bytes() > before
    got = eng.decrypt(eng.rotate(ct, step)).reshape(-1)
    assert bits(got.real, np.roll(x, -step)) >= 25


# -- serialization ------------------------------------------------------------------------

def _first_galois_key(data: bytes, ctx) -> int:
    """Offset of the first Galois key's (digits, mode, level) fields in a saved context."""
    levels = ctx._engine.galois_key_levels()
    g = min(levels)
    size = -(-(ctx.max_level + 1) // ctx._engine.dnum)
    lv = levels[g]
    mode = 2 if ctx.compact_keys else 1
    pos = data.find(struct.pack("<Q", g) + struct.pack("<IBi", lv // size + 1, mode, lv))
    assert pos > 0
    return pos + 8


@pytest.mark.parametrize("compress", [True, False])
def test_compact_trimmed_keys_round_trip(pair, compress):
    _, compact = pair
    data = compact.to_bytes(include_secret_key=True, compress=compress)
    back = ht.from_bytes(data, allow_insecure=True)
    assert back._engine.galois_key_levels() == compact._engine.galois_key_levels()
    assert back.key_bytes() == compact.key_bytes()
    x = np.random.default_rng(6).uniform(-1, 1, back.slots)
    low = (back.encrypt(x) * 1.0).level_to(back.bootstrap_contract.input_level)
    assert bits(back.decrypt(low.bootstrap()), x) >= 20


def test_corrupt_key_fields_raise_format_error(pair):
    _, compact = pair
    data = compact.public().to_bytes()
    at = _first_galois_key(data, compact)
    digits, mode, level = struct.unpack_from("<IBi", data, at)
    cases = {
        "compression flag 3 is not 0, 1 or 2": struct.pack("<IBi", digits, 3, level),
        "level 99 is outside the chain": struct.pack("<IBi", digits, mode, 99),
        "level -1 is outside the chain": struct.pack("<IBi", digits, mode, -1),
        "digits": struct.pack("<IBi", digits + 1, mode, level),
    }
    for message, fields in cases.items():
        bad = reseal(data[:at] + fields + data[at + len(fields):])
        with pytest.raises(ht.FormatError, match=message):
            ht.from_bytes(bad, allow_insecure=True)
    # A key that claims another (consistent) level misreads what follows: still a FormatError.
    other = level - 1 if level > 0 else level + 1
    size = -(-(compact.max_level + 1) // compact._engine.dnum)
    bad = reseal(data[:at] + struct.pack("<IBi", other // size + 1, mode, other) + data[at + 9:])
    with pytest.raises(ht.FormatError):
        ht.from_bytes(bad, allow_insecure=True)


def test_relinearization_key_is_compact_and_a_loaded_context_stays_compact(pair):
    full, compact = pair
    assert compact._engine.relin_key_compact and not full._engine.relin_key_compact
    assert compact._engine.relin_key_bytes() * 2 == full._engine.relin_key_bytes()
    x = np.random.default_rng(12).uniform(-1, 1, full.slots)
    prods = [ctx.decrypt(ctx.encrypt(x) * ctx.encrypt(x)) for ctx in pair]
    assert np.array_equal(prods[0], prods[1])  # the regenerated a halves are the stored ones
    assert bits(prods[1], x * x) >= 25
    back = ht.from_bytes(compact.to_bytes(include_secret_key=True), allow_insecure=True)
    assert back.compact_keys and back._engine.relin_key_compact
    step = next(s for s in range(3, back.slots) if s not in set(back.rotation_steps))
    before = back.key_bytes()
    back.generate_rotation_keys([step])  # a key for every level: compact, as in the saved context
    size = -(-(back.max_level + 1) // back._engine.dnum)
    limbs = back.max_level + 1 + len(back._engine.p)
    assert back.key_bytes() - before == (back.max_level // size + 1) * limbs * back.ring_degree * 8
    assert bits(back.decrypt(back.encrypt(x).rotate(step)), np.roll(x, -step)) >= 25
    expanded = ht.from_bytes(full.to_bytes(include_secret_key=True), allow_insecure=True)
    assert not expanded.compact_keys


def test_default_bootstrapping_keys_are_compact_except_the_relinearization_key(pair):
    """compact_keys=None with bootstrap=True: rotation keys compact, the
    relinearization key (every multiply) expanded (that both forms give the
    same products word for word is the test above)."""
    full, compact = pair
    default = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=5)
    assert default.compact_keys and not default._engine.relin_key_compact
    assert default._engine.relin_key_bytes() == full._engine.relin_key_bytes()
    assert default.key_bytes() == compact.key_bytes() + compact._engine.relin_key_bytes()
    x = np.random.default_rng(13).uniform(-1, 1, full.slots)
    y = default.encrypt(x)
    assert bits(default.decrypt(y * y), x * x) >= 25
    assert bits(default.decrypt(y.bootstrap()), x) >= 20
