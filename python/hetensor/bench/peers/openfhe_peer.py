"""OpenFHE through its official Python wrapper (``openfhe``).

The PyPI wheels ship the extension for Python 3.10 and 3.12 only; on other
versions the import fails and the peer is reported as not importable.

Parameter mapping: same N, multiplicative depth = levels, 60-bit first prime,
40-bit scaling primes, HYBRID key switching with dnum = SetNumLargeDigits,
FIXEDMANUAL scaling (so rescale is a separate op, as in hetensor), uniform
ternary secret, HEStd_128_classic (HEStd_NotSet for insecure test presets).
OpenFHE sizes the special primes itself. It parallelises with OpenMP; the
thread count is set with ``omp_set_num_threads`` of the libgomp bundled in the
wheel (the wrapper has no call for it).
"""

from __future__ import annotations

import itertools
from typing import Dict, Optional

from ..ops import HOISTED_K
from ..spec import LibParams, PresetSpec, compare
from ..timing import Bench
from .base import Adapter, BenchOrReason, Probe, Session, precision_bits, probe_module, rng_values, unavailable


class _OpenfheSession(Session):
    def __init__(self, spec: PresetSpec, threads: int) -> None:
        import openfhe as o

        self.o = o
        self.spec = spec
        threads_set = _set_threads(o, threads)
        p = o.CCParamsCKKSRNS()
        p.SetMultiplicativeDepth(spec.levels)
        p.SetScalingModSize(spec.scale_bits)
        p.SetFirstModSize(spec.first_prime_bits)
        p.SetRingDim(spec.ring_degree)
        p.SetBatchSize(spec.slots)
        p.SetScalingTechnique(o.FIXEDMANUAL)
        p.SetKeySwitchTechnique(o.HYBRID)
        p.SetNumLargeDigits(spec.dnum)
        p.SetSecretKeyDist(o.UNIFORM_TERNARY)
        p.SetSecurityLevel(o.HEStd_NotSet if spec.insecure else o.HEStd_128_classic)
        self.p = p
        security = "INSECURE (test preset)" if spec.insecure else "128-bit (OpenFHE's HEStd_128_classic)"
        differences = []
        try:
            self.cc = self._context()
        except RuntimeError as exc:
            if spec.insecure or "HE standard" not in str(exc):
                raise
            # OpenFHE sizes P itself; with this dnum its P can push log QP past the bound for N.
            p.SetSecurityLevel(o.HEStd_NotSet)
            self.cc = self._context()
            security = "NOT 128-bit: ran with HEStd_NotSet"
            differences.append("OpenFHE refuses these N, levels and dnum at 128-bit (its own special primes "
                               f"push log QP past the bound for N = 2^{spec.log_n}); ran with HEStd_NotSet")
        self.kp = self.cc.KeyGen()
        self.cc.EvalMultKeyGen(self.kp.secretKey)
        self.cc.EvalRotateKeyGen(self.kp.secretKey, list(range(1, HOISTED_K + 1)))
        self.x = rng_values(spec.slots, 1)
        self.y = rng_values(spec.slots, 2)
        self.xl, self.yl = self.x.tolist(), self.y.tolist()
        self.X = self._encrypt(self.xl)
        self.Y = self._encrypt(self.yl)
        self._steps = itertools.count(HOISTED_K + 1)
        n = int(self.cc.GetRingDimension())
        self.params = LibParams(
            ring_degree=n, levels=spec.levels, q_bits=list(spec.q_bits), p_bits=None, dnum=spec.dnum,
            scale_bits=spec.scale_bits, secret="uniform ternary",
            security=security,
            threads_effective=threads if threads_set else "OpenMP default (could not set)",
            notes=["OpenFHE sizes the special primes P itself (not exposed here)",
                   "ciphertext size computed from the layout; key sizes not exposed"],
        )
        self.params.differences = compare(spec, self.params) + differences

    def _context(self):
        o = self.o
        cc = o.GenCryptoContext(self.p)
        cc.Enable(o.PKESchemeFeature.PKE)
        cc.Enable(o.PKESchemeFeature.KEYSWITCH)
        cc.Enable(o.PKESchemeFeature.LEVELEDSHE)
        return cc

    def _encrypt(self, values):
        return self.cc.Encrypt(self.kp.publicKey, self.cc.MakeCKKSPackedPlaintext(values))

    def _decrypt(self, ct):
        pt = self.cc.Decrypt(ct, self.kp.secretKey)
        pt.SetLength(self.spec.slots)
        return pt.GetRealPackedValue()

    def bench(self, op: str) -> BenchOrReason:
        cc, X, Y = self.cc, self.X, self.Y
        if op in ("ntt_limb", "ntt_all"):
            return unavailable("the openfhe Python wrapper exposes no NTT")
        if op == "encode":
            return Bench(run=lambda _: cc.MakeCKKSPackedPlaintext(self.xl))
        if op == "encrypt":
            return Bench(run=lambda _: self._encrypt(self.xl), note="MakeCKKSPackedPlaintext + Encrypt (public key)")
        if op == "decrypt":
            return Bench(run=lambda _: self._decrypt(X), note="Decrypt + GetRealPackedValue")
        if op == "add":
            return Bench(run=lambda _: cc.EvalAdd(X, Y))
        if op == "mul_plain":
            def run_mp(_):
                pt = cc.MakeCKKSPackedPlaintext(self.yl)
                return cc.Rescale(cc.EvalMult(X, pt))
            return Bench(run=run_mp, note="MakeCKKSPackedPlaintext + EvalMult + Rescale")
        if op == "mul_relin":
            return Bench(run=lambda _: cc.EvalMult(X, Y), note="EvalMult (relinearizes; FIXEDMANUAL: no rescale)")
        if op == "rescale":
            return Bench(setup=lambda: cc.EvalMult(X, Y), run=lambda ct: cc.Rescale(ct))
        if op == "mul_relin_rescale":
            return Bench(run=lambda _: cc.Rescale(cc.EvalMult(X, Y)))
        if op == "rotate":
            return Bench(run=lambda _: cc.EvalRotate(X, 1))
        if op == "rotate_hoisted":
            m = 2 * self.spec.ring_degree

            def run_hoisted(_):
                pre = cc.EvalFastRotationPrecompute(X)
                return [cc.EvalFastRotation(X, k, m, pre) for k in range(1, HOISTED_K + 1)]
            return Bench(run=run_hoisted, note="EvalFastRotationPrecompute + EvalFastRotation")
        if op == "keygen_context":
            def run_ctx(_):
                c = self._context()
                kp = c.KeyGen()
                c.EvalMultKeyGen(kp.secretKey)
                return c
            return Bench(run=run_ctx, note="GenCryptoContext + KeyGen + EvalMultKeyGen")
        if op == "keygen_public":
            return Bench(run=lambda _: cc.KeyGen(), note="KeyGen makes the secret and public keys together")
        if op == "keygen_relin":
            return Bench(setup=lambda: cc.KeyGen().secretKey, run=lambda sk: cc.EvalMultKeyGen(sk),
                         note="EvalMultKeyGen for a fresh secret key (OpenFHE keeps one per key tag)")
        if op == "keygen_galois":
            return Bench(setup=lambda: next(self._steps),
                         run=lambda k: cc.EvalRotateKeyGen(self.kp.secretKey, [k]))
        return unavailable(f"op '{op}' is not defined for OpenFHE")

    def metrics(self) -> Dict[str, Optional[float]]:
        got = self._decrypt(self.cc.Rescale(self.cc.EvalMult(self.X, self.Y)))
        return {
            "ciphertext_bytes": float(2 * (self.spec.levels + 1) * self.spec.ring_degree * 8),
            "public_key_bytes": None,
            "relin_key_bytes": None,
            "galois_key_bytes": None,
            "precision_bits": precision_bits(got, self.x * self.y),
            "fresh_precision_bits": precision_bits(self._decrypt(self.X), self.x),
        }


def _set_threads(o, threads: int) -> bool:
    """Set OpenMP's thread count in the runtime OpenFHE uses; False when it cannot be set."""
    import ctypes
    import glob
    import os

    for name in ("omp_set_num_threads", "SetNumThreads"):
        fn = getattr(o, name, None)
        if callable(fn):
            fn(int(threads))
            return True
    libdir = os.path.join(os.path.dirname(o.__file__), "lib")
    for path in sorted(glob.glob(os.path.join(libdir, "libgomp*.so*"))) + ["libgomp.so.1"]:
        try:
            ctypes.CDLL(path).omp_set_num_threads(ctypes.c_int(int(threads)))
            return True
        except (OSError, AttributeError):
            continue
    return False


class OpenfheAdapter(Adapter):
    """OpenFHE (official Python wrapper)."""

    name = "openfhe"
    thread_aware = True

    def __init__(self) -> None:
        self._sessions: Dict[tuple, _OpenfheSession] = {}

    def probe(self) -> Probe:
        return probe_module("openfhe", "openfhe")

    def open(self, spec: PresetSpec, threads: int) -> Session:
        key = (spec.preset, threads)
        if key not in self._sessions:
            self._sessions = {}  # one live session: keys of the last thread count are freed first
            self._sessions[key] = _OpenfheSession(spec, threads)
        return self._sessions[key]

    def release(self) -> None:
        self._sessions = {}
