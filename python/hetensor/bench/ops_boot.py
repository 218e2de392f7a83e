"""The ``bootstrap`` and ``bootstrap_pair`` ops as hetensor runs them (group ``boot``, issues 4 and 10).

The bootstrapping context is made here, once per preset, with exactly the keys
the circuit needs (``Context.from_preset(..., bootstrap=True)``); its key
generation time, key memory, levels left and precision go into the note.
A preset without bootstrapping parameters is mapped to the bootstrappable
preset of the same ring degree (n16 -> n16-boot, toy-insecure -> toy-boot-insecure).
"""

from __future__ import annotations

import math
import resource
import time
from typing import Dict, Optional


#: Bootstrappable preset used for a ring degree when the bench preset itself is not one.
BOOT_PRESET_BY_LOG_N: Dict[int, str] = {12: "toy-boot-insecure", 16: "n16-boot"}

_contexts: Dict[str, object] = {}
_keygen_seconds: Dict[str, float] = {}


def boot_preset_for(preset: str, log_n: int) -> Optional[str]:
    """The preset to bootstrap in for a bench preset, or None when none has this ring degree."""
    from hetensor.boot import BOOT_PRESETS

    if preset in BOOT_PRESETS:
        return preset
    return BOOT_PRESET_BY_LOG_N.get(log_n)


def _context(name: str):
    import hetensor as ht

    if name not in _contexts:
        _contexts.clear()  # one bootstrapping context at a time: they take gigabytes
        t0 = time.perf_counter()
        _contexts[name] = ht.Context.from_preset(name, bootstrap=True)
        _keygen_seconds[name] = time.perf_counter() - t0
    return _contexts[name]


def hetensor_bench(session, op: str):
    """The Bench of ``bootstrap`` or ``bootstrap_pair`` (two real vectors in one
    complex-packed bootstrap) for hetensor's session (see hetensor_ops)."""
    from .peers.base import precision_bits, rng_values, unavailable
    from .timing import Bench

    log_n = int(math.log2(session.ctx.ring_degree))
    name = boot_preset_for(session.spec.preset, log_n)
    if name is None:
        return unavailable(f"no bootstrappable hetensor preset at N = 2^{log_n} (have: "
                           f"{', '.join(sorted(BOOT_PRESET_BY_LOG_N.values()))})")
    ctx = _context(name)
    x = rng_values(ctx.slots, 7)  # uniform in [-1, 1]
    ct0 = ctx.encrypt(x)
    out = ctx.bootstrap(ct0)  # warm-up, and the precision of the result
    bits = precision_bits(ctx.decrypt(out), x)
    boot = ctx._bootstrapper
    p = boot.params
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    c = ctx.bootstrap_contract
    note = (f"{name}: {ctx.describe()}; {{bits}}, {out.level - c.input_level} levels left "
            f"({c.order} order: input at level >= {c.input_level}, output at {out.level}; CtS {p.cts_levels}, "
            f"EvalMod {p.eval_mod_levels(boot.degree)}, StC {p.stc_levels} levels); cosine degree {boot.degree}, "
            f"K {p.k_bound}, {p.double_angles} double angles, "
            f"arcsine degree {p.arcsine_degree}, message ratio "
            f"2^{math.log2(boot.early_message_ratio if c.stc_first else boot.message_ratio):.0f}, "
            f"encapsulated h = {p.encapsulation_h} secret for ModRaise; keys {ctx.key_bytes() / 2**30:.2f} GiB "
            f"({len(boot.rotation_steps)} rotation keys + conjugation + relinearization + encapsulation), "
            f"key generation {_keygen_seconds[name]:.1f} s; process peak RSS so far {rss / 1e9:.1f} GB")
    if op == "bootstrap_pair":
        y = rng_values(ctx.slots, 8)
        ct1 = ctx.encrypt(y)
        fx, fy = ctx.bootstrap_many([ct0, ct1])
        pair_bits = min(precision_bits(ctx.decrypt(fx), x), precision_bits(ctx.decrypt(fy), y))
        note = note.replace("{bits}", f"two real vectors in one bootstrap of a + i b (ctx.bootstrap_many), the "
                                      f"time is for both; {pair_bits:.1f} bits (worst of the two)")
        return Bench(run=lambda _: ctx.bootstrap_many([ct0, ct1]), note=note)
    return Bench(run=lambda _: ctx.bootstrap(ct0), note=note.replace("{bits}", f"{bits:.1f} bits"))


__all__ = ["BOOT_PRESET_BY_LOG_N", "boot_preset_for", "hetensor_bench"]
