"""Orion (``orion-fhe``): Lattigo v6 in Go, driven through Orion's ctypes bindings.

Orion's own Python layer (``orion.backend.python``) wraps whole tensors; the
bench calls the same Lattigo entry points it uses (``Encode``, ``Encrypt``,
``MulRelinCiphertextNew``, ``RescaleNew``, ``RotateNew`` ...) one ciphertext at
a time. Values cross the binding as float32, which caps the measurable
precision near 24 bits.

Parameter mapping: Lattigo splits Q into dnum = ceil(#Q / #P) digits by
counting special primes, so to keep the preset's dnum the adapter uses
#P = ceil(#Q / dnum) special primes sharing the preset's total special-prime
bits (at most 61 bits each). The secret is sparse ternary (h = 192, Orion's
default; its binding takes only a Hamming weight). Lattigo runs one op on one
goroutine. Lattigo keeps one scheme per process (Go globals), so one preset
is live at a time, and Orion's evaluator makes every power-of-two rotation
key when it is created.
"""

from __future__ import annotations

import ctypes
import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..ops import HOISTED_K
from ..spec import LibParams, PresetSpec, compare
from ..timing import Bench
from .base import Adapter, BenchOrReason, Probe, Session, precision_bits, probe_module, rng_values, unavailable
from .orion_boot import decrypt_values

HAMMING_WEIGHT = 192
LATTIGO_MAX_PRIME_BITS = 61


def lattigo_chain(spec: PresetSpec) -> Tuple[List[int], List[int], int]:
    """(logQ, logP, dnum) for Lattigo that keep the preset's dnum and total special bits."""
    log_q = list(spec.q_bits)
    total_p = sum(spec.p_bits) or LATTIGO_MAX_PRIME_BITS
    count = math.ceil(len(log_q) / max(1, spec.dnum))
    bits = min(LATTIGO_MAX_PRIME_BITS, math.ceil(total_p / count))
    while count * bits < total_p and bits < LATTIGO_MAX_PRIME_BITS:
        bits += 1
    log_p = [bits] * count
    return log_q, log_p, math.ceil(len(log_q) / count)


def _non_power_of_two_steps(start: int):
    k = start
    while True:
        if k & (k - 1):
            yield k
        k += 1


class _OrionSession(Session):
    def __init__(self, lib, spec: PresetSpec) -> None:
        self.lib = lib
        self.raw = lib.lib
        self.spec = spec
        self.log_q, self.log_p, dnum = lattigo_chain(spec)
        self.scale = 1 << spec.scale_bits
        self.levels = len(self.log_q) - 1
        self.n = spec.ring_degree
        self.x = rng_values(spec.slots, 1)
        self.y = rng_values(spec.slots, 2)
        self._x32 = (ctypes.c_float * spec.slots)(*self.x.tolist())
        self._y32 = (ctypes.c_float * spec.slots)(*self.y.tolist())
        self._build()
        self._steps = _non_power_of_two_steps(HOISTED_K + 1)
        log_qp = sum(self.log_q) + sum(self.log_p)
        security = ("INSECURE (test preset)" if spec.insecure else
                    f"128-bit by the HE standard (log QP {log_qp} <= {spec.he_standard_max_log_qp})"
                    if log_qp <= spec.he_standard_max_log_qp else f"BELOW 128-bit (log QP {log_qp})")
        self.params = LibParams(
            ring_degree=self.n, levels=self.levels, q_bits=self.log_q, p_bits=self.log_p, dnum=dnum,
            scale_bits=spec.scale_bits, secret=f"sparse ternary h={HAMMING_WEIGHT}", security=security,
            threads_effective=1,
            notes=[
                "Lattigo decomposes by counting special primes (dnum = ceil(#Q/#P)); #P chosen to keep dnum",
                "values cross Orion's binding as float32: precision is capped near 24 bits",
                "Lattigo runs one op on one goroutine: one figure serves every --threads value",
                "key and ciphertext sizes are computed from Lattigo's layout (no size call in the binding)",
            ],
        )
        self.params.differences = compare(spec, self.params)
        if spec.hamming_weight != HAMMING_WEIGHT:
            self.params.differences.append(f"secret sparse ternary h={HAMMING_WEIGHT} instead of {spec.secret}")

    # -- scheme ------------------------------------------------------------
    def _new_scheme(self) -> None:
        from orion.backend.python.parameters import NewParameters

        prm = NewParameters({
            "ckks_params": {"LogN": self.spec.log_n, "LogQ": self.log_q, "LogP": self.log_p,
                            "LogScale": self.spec.scale_bits, "H": HAMMING_WEIGHT, "RingType": "standard"},
            "orion": {"backend": "lattigo"},
        })
        self.lib.setup_bindings(prm)  # declares the functions and calls NewScheme
        self.lib.NewKeyGenerator()
        self.lib.GenerateSecretKey()
        self.lib.GeneratePublicKey()
        self.lib.GenerateRelinearizationKey()

    def _build(self) -> None:
        """Scheme, keys, encoder, evaluator (with its power-of-two keys) and two inputs."""
        self._new_scheme()
        lib = self.lib
        lib.GenerateEvaluationKeys()
        lib.NewEncoder()
        lib.NewEncryptor()
        lib.NewDecryptor()
        lib.NewEvaluator()
        for k in range(1, HOISTED_K + 1):
            lib.AddRotationKey(k)
        self.X = self._encrypt(self._x32)
        self.Y = self._encrypt(self._y32)

    # -- helpers -----------------------------------------------------------
    def _encode(self, values, level: int) -> int:
        return self.raw.Encode(values, self.spec.slots, level, self.scale)

    def _encrypt(self, values) -> int:
        pt = self._encode(values, self.levels)
        ct = self.raw.Encrypt(pt)
        self.raw.DeletePlaintext(pt)
        return ct

    def _decrypt(self, ct: int) -> np.ndarray:
        return decrypt_values(self.lib, ct)

    def _drop_ct(self, _arg, ct) -> None:
        if isinstance(ct, int):
            self.raw.DeleteCiphertext(ct)

    def _drop_pt(self, _arg, pt) -> None:
        self.raw.DeletePlaintext(pt)

    def _mul_plain(self) -> int:
        raw = self.raw
        pt = self._encode(self._y32, raw.GetCiphertextLevel(self.X))
        ct = raw.MulPlaintextNew(self.X, pt)
        raw.Rescale(ct)
        raw.DeletePlaintext(pt)
        return ct

    def _mul_relin_rescale(self) -> int:
        ct = self.raw.MulRelinCiphertextNew(self.X, self.Y)
        self.raw.Rescale(ct)
        return ct

    # -- ops ---------------------------------------------------------------
    def bench(self, op: str) -> BenchOrReason:
        raw = self.raw
        if op in ("ntt_limb", "ntt_all"):
            return unavailable("Orion's Lattigo bindings expose no NTT")
        if op == "encode":
            return Bench(run=lambda _: self._encode(self._x32, self.levels), cleanup=self._drop_pt,
                         note="float32 values (Orion's binding type)")
        if op == "encrypt":
            return Bench(run=lambda _: self._encrypt(self._x32), cleanup=self._drop_ct,
                         note="Encode + Encrypt (public key)")
        if op == "decrypt":
            return Bench(run=lambda _: self._decrypt(self.X), note="Decrypt + Decode, float32 out")
        if op == "add":
            return Bench(run=lambda _: raw.AddCiphertextNew(self.X, self.Y), cleanup=self._drop_ct)
        if op == "mul_plain":
            return Bench(run=lambda _: self._mul_plain(), cleanup=self._drop_ct,
                         note="Encode + MulPlaintextNew + Rescale")
        if op == "mul_relin":
            return Bench(run=lambda _: raw.MulRelinCiphertextNew(self.X, self.Y), cleanup=self._drop_ct)
        if op == "rescale":
            def drop_both(arg, out):
                raw.DeleteCiphertext(arg)
                raw.DeleteCiphertext(out)
            return Bench(setup=lambda: raw.MulRelinCiphertextNew(self.X, self.Y),
                         run=lambda ct: raw.RescaleNew(ct), cleanup=drop_both)
        if op == "mul_relin_rescale":
            return Bench(run=lambda _: self._mul_relin_rescale(), cleanup=self._drop_ct)
        if op == "rotate":
            return Bench(run=lambda _: raw.RotateNew(self.X, 1), cleanup=self._drop_ct)
        if op == "rotate_hoisted":
            return unavailable("Orion's Lattigo bindings expose no hoisted rotation")
        if op == "bootstrap":  # Lattigo's own bootstrapping parameters (orion_boot.py)
            from .orion_boot import session_bench

            return session_bench(self)
        if op == "keygen_context":
            return Bench(run=lambda _: self._new_scheme(), finalize=self._build,
                         note="NewScheme (parameters) + secret, public and relinearization keys")
        if op == "keygen_public":
            return Bench(run=lambda _: self.lib.GeneratePublicKey())
        if op == "keygen_relin":
            return Bench(run=lambda _: self.lib.GenerateRelinearizationKey())
        if op == "keygen_galois":
            return Bench(setup=lambda: next(self._steps), run=lambda k: self.lib.AddRotationKey(k),
                         note="AddRotationKey(k) for a new step (GenGaloisKeyNew)")
        return unavailable(f"op '{op}' is not defined for Orion")

    def metrics(self) -> Dict[str, Optional[float]]:
        ct = self._mul_relin_rescale()
        got = self._decrypt(ct)
        self.raw.DeleteCiphertext(ct)
        word, n = 8, self.n
        qp = len(self.log_q) + len(self.log_p)
        dnum = int(self.params.dnum)
        return {
            "ciphertext_bytes": float(2 * len(self.log_q) * n * word),
            "public_key_bytes": float(2 * qp * n * word),
            "relin_key_bytes": float(dnum * 2 * qp * n * word),
            "galois_key_bytes": float(dnum * 2 * qp * n * word),
            "precision_bits": precision_bits(got, self.x * self.y),
            "fresh_precision_bits": precision_bits(self._decrypt(self.X), self.x),
        }


class OrionAdapter(Adapter):
    """Orion / Lattigo: one live scheme per process."""

    name = "orion"
    thread_aware = False

    def __init__(self) -> None:
        self._lib = None
        self._session: Optional[_OrionSession] = None

    def probe(self) -> Probe:
        return probe_module("orion.backend.lattigo.bindings", "orion-fhe")

    def open(self, spec: PresetSpec, threads: int) -> Session:
        from .boot_common import is_boot_preset

        if is_boot_preset(spec):  # only 'bootstrap', with Lattigo's own parameters (orion_boot.py)
            from .orion_boot import boot_session

            self.release()
            return boot_session(self, spec, threads)
        if self._session is None or self._session.spec != spec:
            self.release()
            if self._lib is None:
                from orion.backend.lattigo.bindings import LattigoLibrary

                self._lib = LattigoLibrary()
            self._session = _OrionSession(self._lib, spec)
        return self._session

    def release(self) -> None:
        if self._session is not None and self._lib is not None:
            self._lib.DeleteScheme()
        self._session = None
