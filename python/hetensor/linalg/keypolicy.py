"""Which rotation keys an operation needs, and what happens when some are missing.

Policies (``set_key_policy`` or ``Context.from_preset(key_policy=...)``):

- ``"exact"`` (default): one key per distinct step, rotations hoisted.
- ``"few"``: the long side of a product loop is chained (each rotation starts
  from the previous one: keys for the step differences only).
- ``"power-of-two"``: keys for +-2^k only; a rotation whose own key is
  missing is composed from them by the C++ core (signed binary digits of the
  step, at most log2(slots) / 2 + 1 full key switches, no hoisting): at most
  2 log2(slots) keys for everything, more key switches.

``auto_keys`` (contexts with the secret key): missing keys are made when an
operation first needs them, with one log line (logger ``hetensor``).
"""

from __future__ import annotations

import logging
from typing import Iterable, List

from ..errors import MissingKeyError
from .cache import cache

POLICIES = ("exact", "few", "power-of-two")
_ALIASES = {"fast": "exact"}
log = logging.getLogger("hetensor")


def set_key_policy(ctx, policy: str) -> None:
    """Choose how ``ctx``'s matrix operations use rotation keys: ``"exact"``, ``"few"``
    or ``"power-of-two"`` (see the module docstring)."""
    p = _ALIASES.get(policy, policy)
    if p not in POLICIES:
        raise ValueError(f"unknown key policy {policy!r}: use one of {', '.join(POLICIES)}")
    cache(ctx)["keys"] = p


def key_policy(ctx) -> str:
    """The context's key policy."""
    return cache(ctx)["keys"]


def set_auto_keys(ctx, on: bool) -> None:
    """Make missing rotation keys on the fly (needs the secret key)."""
    if on and not getattr(ctx._engine, "has_secret_key", True):
        raise ValueError("auto_keys needs a context that holds the secret key")
    cache(ctx)["auto_keys"] = bool(on)


def auto_keys(ctx) -> bool:
    return bool(cache(ctx)["auto_keys"])


def normalize(slots: int, steps: Iterable[int]) -> List[int]:
    """Distinct nonzero steps in [1, slots)."""
    return sorted({int(s) % slots for s in steps if int(s) % slots})


def power_of_two_terms(step: int, slots: int) -> List[int]:
    """Signed powers of two summing to ``step`` modulo ``slots`` (non-adjacent form of
    the shorter direction): the rotations a composed rotation by ``step`` makes."""
    s = int(step) % slots
    if s == 0:
        return []
    best = None
    for v in (s, s - slots):
        terms, x, e = [], v, 0
        while x:
            if x & 1:
                d = 2 - (x & 3)  # +1 or -1 (x mod 4 == 1 -> +1, == 3 -> -1)
                terms.append(d << e)
                x -= d
            x >>= 1
            e += 1
        if best is None or len(terms) < len(best):
            best = terms
    return best


def keys_for_steps(slots: int, steps: Iterable[int], policy: str) -> List[int]:
    """The key steps (normalized) that rotations by ``steps`` use under ``policy``."""
    steps = normalize(slots, steps)
    if policy != "power-of-two":
        return steps
    return normalize(slots, (t for s in steps for t in power_of_two_terms(s, slots)))


def missing(ctx, keys: Iterable[int]) -> List[int]:
    have = set(int(s) for s in ctx._engine.rotation_steps())
    return [s for s in normalize(ctx.slots, keys) if s not in have]


def key_bytes(ctx, steps: Iterable[int] = None) -> int:
    """Bytes that keys for ``steps`` would add (steps that have keys count 0); without
    ``steps``, the bytes of every key the context holds."""
    if steps is None:
        return int(ctx._engine.key_bytes())
    return len(missing(ctx, steps)) * _new_key_bytes(ctx)


def _new_key_bytes(ctx) -> int:
    """One new rotation key (every level): the relinearization key's size, half when compact."""
    full = int(ctx._engine.relin_key_bytes())
    return full // 2 if ctx._engine.compact_keys else full


def ensure(ctx, steps: Iterable[int], what: str) -> None:
    """Check that every key of ``steps`` (under the policy) exists, before any work.

    Missing keys are made (``auto_keys``) or reported all at once in a
    :class:`hetensor.MissingKeyError` whose ``.steps`` lists every one of them.
    """
    keys = keys_for_steps(ctx.slots, steps, key_policy(ctx))
    need = missing(ctx, keys)
    if not need:
        return
    mib = len(need) * _new_key_bytes(ctx) / 2**20
    if auto_keys(ctx):
        log.info("hetensor: %s: making %d rotation key(s) (%.1f MiB): %s", what, len(need), mib, need)
        ctx._engine.generate_rotation_keys(need)
        return
    shown = ", ".join(str(s) for s in need[:12]) + (", ..." if len(need) > 12 else "")
    raise MissingKeyError(
        f"cannot {what}: no rotation key for {len(need)} step(s) [{shown}] ({mib:.1f} MiB of keys); "
        "make them with ctx.generate_rotation_keys(err.steps), plan them with ctx.rotation_steps_for(...), "
        "or create the context with auto_keys=True", need)
