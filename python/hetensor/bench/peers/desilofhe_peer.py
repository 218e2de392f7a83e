"""DESILO FHE (``desilofhe``, CPU build).

desilofhe chooses N, the primes and the key-switching decomposition itself
from ``max_level``; only the level count and thread count can be set. The
adapter asks for the preset's level count, checks the N it got, and reads the
number of RNS limbs from ciphertext sizes. Its multiply always rescales
(fused), so 'mul_relin' and 'rescale' alone cannot be expressed. The matrix
products (group linalg) run in its matrix form: see desilofhe_linalg.py.
"""

from __future__ import annotations

from typing import Dict, Optional

from ..ops import HOISTED_K
from ..ops_linalg import LINALG_OP_NAMES
from ..spec import LibParams, PresetSpec, compare
from ..timing import Bench
from .base import Adapter, BenchOrReason, Probe, Session, precision_bits, probe_module, rng_values, unavailable


def _engine(levels: int, threads: int):
    import desilofhe

    return desilofhe.Engine(max_level=levels, mode="cpu", thread_count=threads)


class _DesiloSession(Session):
    def __init__(self, spec: PresetSpec, threads: int) -> None:
        self.spec = spec
        self.threads = threads
        e = self.e = _engine(spec.levels, threads)
        self.sk = e.create_secret_key()
        self.pk = e.create_public_key(self.sk)
        self.rk = e.create_relinearization_key(self.sk)
        self.rot = [e.create_fixed_rotation_key(self.sk, k) for k in range(1, HOISTED_K + 1)]
        slots = int(e.slot_count)
        self.x = rng_values(slots, 1)
        self.y = rng_values(slots, 2)
        self.X = e.encrypt(self.x, self.pk)
        self.Y = e.encrypt(self.y, self.pk)
        n = 2 * slots
        self.n = n
        limbs = int(self.X.nbytes) // (2 * n * 8)
        self.top_limbs = limbs
        self._steps = iter(range(HOISTED_K + 1, slots))
        self.params = LibParams(
            ring_degree=n, levels=int(e.max_level), q_bits=None, p_bits=None,
            dnum="not exposed", scale_bits=None, secret="not exposed",
            security="128-bit (desilofhe's own parameter choice)", threads_effective=threads,
            notes=[
                "desilofhe picks N, primes, scale and dnum from max_level; only levels and threads are set",
                f"a top-level ciphertext holds {limbs} RNS limbs (from nbytes) for {spec.levels} levels",
                "multiply always rescales (fused): mul_relin and rescale are not separable",
            ],
        )
        self.params.differences = compare(spec, self.params)

    def bench(self, op: str) -> BenchOrReason:
        e = self.e
        if op in LINALG_OP_NAMES:  # batched products in desilofhe's matrix form (an engine of their own)
            from .desilofhe_linalg import linalg_bench

            return linalg_bench(op, self.threads)
        if op == "bootstrap":  # desilofhe's own bootstrapping engine (desilofhe_boot.py)
            from .desilofhe_boot import bootstrap_bench

            return bootstrap_bench(self.spec, self.threads)
        if op == "ntt_limb":
            return unavailable("desilofhe exposes the NTT only on whole ciphertexts (see ntt_all)")
        if op == "ntt_all":
            return Bench(run=lambda _: e.ntt(e.intt(self.X)), divisor=2,
                         note="Engine.intt + Engine.ntt of a 2-polynomial ciphertext, halved")
        if op == "encode":
            return Bench(run=lambda _: e.encode(self.x))
        if op == "encrypt":
            return Bench(run=lambda _: e.encrypt(self.x, self.pk), note="Engine.encrypt(values, public key)")
        if op == "decrypt":
            return Bench(run=lambda _: e.decrypt(self.X, self.sk))
        if op == "add":
            return Bench(run=lambda _: e.add(self.X, self.Y))
        if op == "mul_plain":
            level = int(self.X.level)
            return Bench(run=lambda _: e.multiply(self.X, e.encode(self.y, level)),
                         note="encode + multiply (rescale fused)")
        if op in ("mul_relin", "rescale"):
            return unavailable("desilofhe's multiply always rescales (fused): see mul_relin_rescale")
        if op == "mul_relin_rescale":
            return Bench(run=lambda _: e.multiply(self.X, self.Y, self.rk),
                         note="Engine.multiply with the relinearization key (rescale fused)")
        if op == "rotate":
            return Bench(run=lambda _: e.rotate(self.X, self.rot[0]), note="fixed rotation key for step 1")
        if op == "rotate_hoisted":
            return Bench(run=lambda _: e.rotate_many(self.X, self.rot),
                         note=f"Engine.rotate_many with {HOISTED_K} fixed rotation keys")
        if op == "keygen_context":
            def run_ctx(_):
                eng = _engine(self.spec.levels, self.threads)
                sk = eng.create_secret_key()
                eng.create_public_key(sk)
                eng.create_relinearization_key(sk)
                return eng
            return Bench(run=run_ctx, note="Engine(max_level) + secret, public and relinearization keys")
        if op == "keygen_public":
            return Bench(run=lambda _: e.create_public_key(self.sk))
        if op == "keygen_relin":
            return Bench(run=lambda _: e.create_relinearization_key(self.sk))
        if op == "keygen_galois":
            return Bench(setup=lambda: next(self._steps),
                         run=lambda k: e.create_fixed_rotation_key(self.sk, k),
                         note="create_fixed_rotation_key for one step")
        return unavailable(f"op '{op}' is not defined for desilofhe")

    def metrics(self) -> Dict[str, Optional[float]]:
        e = self.e
        got = e.decrypt(e.multiply(self.X, self.Y, self.rk), self.sk)
        return {
            "ciphertext_bytes": float(self.X.nbytes),
            "public_key_bytes": float(self.pk.nbytes),
            "relin_key_bytes": float(self.rk.nbytes),
            "galois_key_bytes": float(self.rot[0].nbytes),
            "precision_bits": precision_bits(got, self.x * self.y),
            "fresh_precision_bits": precision_bits(e.decrypt(self.X, self.sk), self.x),
        }


class DesilofheAdapter(Adapter):
    """desilofhe: thread count is fixed when its Engine is made, so one session per thread count."""

    name = "desilofhe"
    thread_aware = True

    def __init__(self) -> None:
        self._sessions: Dict[tuple, _DesiloSession] = {}

    def probe(self) -> Probe:
        return probe_module("desilofhe", "desilofhe")

    def open(self, spec: PresetSpec, threads: int) -> Session:
        from .boot_common import is_boot_preset

        if is_boot_preset(spec):  # only 'bootstrap', in desilofhe's own bootstrapping engine (desilofhe_boot.py)
            from .desilofhe_boot import boot_session

            self._sessions = {}
            return boot_session(spec, threads)
        key = (spec.preset, threads)
        if key not in self._sessions:
            self._sessions = {}  # one live session: keys of the last thread count are freed first
            self._sessions[key] = _DesiloSession(spec, threads)
        return self._sessions[key]

    def release(self) -> None:
        self._sessions = {}

