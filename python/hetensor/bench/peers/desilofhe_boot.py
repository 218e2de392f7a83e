"""desilofhe's full-slot bootstrapping for the ``bootstrap`` op.

desilofhe bootstraps only in its bootstrapping engine, ``Engine(bootstrap=True)``:
N = 2^16 (2^15 slots), 17 levels for computation, primes, scale, secret and
key-switching decomposition all chosen by the library and not exposed (the
adapter reads the RNS limb counts from object sizes). There is no smaller
bootstrappable ring, so other ring degrees are reported unavailable.

Key mode: the small bootstrap key (``create_small_bootstrap_key`` + a roll key,
``bootstrap(ct, relin, conj, roll, small_key)``), the mode documented for low
memory. The default mode (``create_bootstrap_key``, every rotation key of the
circuit fixed in advance) does not fit in this machine's 24 GB next to the rest
of the process (issue 4), so it is not attempted. Key sizes are exact
(``nbytes`` of every key the call takes).
"""

from __future__ import annotations

import time
from typing import Dict, Optional

from ..spec import LibParams, PresetSpec
from .base import BenchOrReason, rng_values, unavailable
from .boot_common import (BOOT_INPUT_SEED, BootCase, BootFigures, BootOnlySession, measure_bits, peak_rss_bytes,
                          rss_bytes)

#: The ring degree of desilofhe's bootstrapping engine.
BOOT_LOG_N = 16

SECURITY = "128-bit as claimed by DESILO for its bootstrapping parameters (not exposed: no log QP to check)"


def _limbs(nbytes: int, polys: int, n: int) -> int:
    """RNS limbs of an object of ``polys`` polynomials of N 64-bit words (plus a small header)."""
    return int(nbytes // (polys * n * 8))


class DesiloBootCase(BootCase):
    """desilofhe's bootstrapping engine with the small-key-mode keys and one level-0 ciphertext."""

    def __init__(self, spec: PresetSpec, threads: int) -> None:
        import desilofhe

        t0 = time.perf_counter()
        e = self.e = desilofhe.Engine(bootstrap=True, mode="cpu", thread_count=threads)
        self.sk = e.create_secret_key()
        self.pk = e.create_public_key(self.sk)
        setup_s = time.perf_counter() - t0
        rss0 = rss_bytes()
        t1 = time.perf_counter()
        # Every key bootstrap() takes in the small-key mode.
        self.keys: Dict[str, object] = {
            "relinearization": e.create_relinearization_key(self.sk),
            "conjugation": e.create_conjugation_key(self.sk),
            "roll": e.create_roll_key(self.sk),
            "small bootstrap": e.create_small_bootstrap_key(self.sk),
        }
        keygen_s = time.perf_counter() - t1
        growth = rss_bytes() - rss0
        slots = int(e.slot_count)
        n = 2 * slots
        self.x = rng_values(slots, BOOT_INPUT_SEED)
        self.ct_in = e.encrypt(self.x, self.pk, 0)  # level 0: the state of a ciphertext that needs bootstrapping
        top = e.encrypt(self.x, self.pk)
        key_bytes = sum(int(k.nbytes) for k in self.keys.values())  # type: ignore[attr-defined]
        sizes = ", ".join(f"{name} {int(k.nbytes) / 1e9:.2f}" for name, k in self.keys.items())  # type: ignore[attr-defined]
        self.parameters = (
            f"Engine(bootstrap=True): N=2^{n.bit_length() - 1}, {slots} slots, max level {int(e.max_level)}; "
            f"RNS limbs (from object sizes; prime sizes, scale, secret and dnum not exposed): "
            f"ciphertext {_limbs(int(top.nbytes), 2, n)} at level {int(top.level)} and "
            f"{_limbs(int(self.ct_in.nbytes), 2, n)} at level 0, public key {_limbs(int(self.pk.nbytes), 2, n)}, "
            f"secret key {_limbs(int(self.sk.nbytes), 1, n)} (the key-switching basis QP); "
            f"small bootstrap key mode (keys in GB: {sizes})")
        self.n, self.slots = n, slots
        self.figures = BootFigures(
            library=f"desilofhe Engine.bootstrap (small bootstrap key) of a full-slot ({slots}) level-0 ciphertext",
            parameters=self.parameters, security=SECURITY, keygen_s=keygen_s, setup_s=setup_s,
            key_bytes=float(key_bytes),
            key_bytes_method=f"exact: nbytes of the 4 keys; RSS grew {growth / 1e9:.2f} GB while making them",
            peak_rss_setup=peak_rss_bytes(), input_level=int(self.ct_in.level),
            notes=[f"thread_count={threads} (desilofhe's OpenMP threads)",
                   "the default bootstrap key (create_bootstrap_key) does not fit in 24 GB (issue 4): not attempted"])

    def bootstrap_once(self):
        k = self.keys
        return self.e.bootstrap(self.ct_in, k["relinearization"], k["conjugation"], k["roll"], k["small bootstrap"])

    def check(self, out) -> None:
        got = self.e.decrypt(out, self.sk)
        self.figures.bits = measure_bits(got.real if got.dtype.kind == "c" else got, self.x)
        self.figures.levels_left = int(out.level)

    def free(self) -> None:
        """Drop the engine and keys (gigabytes) once the samples are done."""
        self.keys = {}
        self.e = self.sk = self.pk = self.ct_in = None


def config_reason(spec: PresetSpec) -> Optional[str]:
    """Why desilofhe cannot bootstrap at this preset, or None."""
    if spec.log_n != BOOT_LOG_N:
        return (f"desilofhe bootstraps only in Engine(bootstrap=True), whose ring is N=2^{BOOT_LOG_N}; preset "
                f"{spec.preset} has N=2^{spec.log_n} (no smaller bootstrappable ring)")
    return None


def bootstrap_bench(spec: PresetSpec, threads: int) -> BenchOrReason:
    """The Bench of ``bootstrap`` for desilofhe (its own engine; the session's engine is untouched)."""
    reason = config_reason(spec)
    if reason:
        return unavailable(reason)
    case = DesiloBootCase(spec, threads)
    return case.bench(finalize=case.free)


def boot_session(spec: PresetSpec, threads: int) -> BootOnlySession:
    """The session of a bootstrapping preset (desilofhe_peer.DesilofheAdapter.open): nothing is
    made until ``bootstrap`` is asked for."""
    reason = config_reason(spec)
    params = LibParams(
        ring_degree=1 << BOOT_LOG_N, levels=17, q_bits=None, p_bits=None, dnum="not exposed", scale_bits=None,
        secret="not exposed", security=SECURITY, threads_effective=threads,
        notes=[reason or "Engine(bootstrap=True): desilofhe's own bootstrapping parameters (see the op's note)"])
    return BootOnlySession("desilofhe", spec, threads, params, lambda: bootstrap_bench(spec, threads))


__all__ = ["BOOT_LOG_N", "DesiloBootCase", "boot_session", "bootstrap_bench", "config_reason"]
