"""Microsoft SEAL through TenSEAL's low-level binding ``tenseal.sealapi``.

TenSEAL's high-level ``ckks_vector`` fuses ops and hides rotations, so the
SEAL objects (Encryptor, Evaluator, KeyGenerator) are driven directly.

Parameter mapping: same N, the chain [first, scale x levels] plus ONE special
prime (SEAL's key switching uses the last modulus as the only special prime,
so dnum is always the number of ciphertext primes, and SEAL caps a prime at
60 bits). SEAL's own 128-bit table stops at N = 2^15, so for N = 2^16 the
context is made with ``sec_level NONE`` after checking that log QP is within
the HomomorphicEncryption.org bound for that N (the same check hetensor
applies); the result says so. SEAL runs every op on one thread. The matrix
products (group linalg) use TenSEAL's own API: see tenseal_linalg.py.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from ..ops import HOISTED_K
from ..ops_linalg import LINALG_OP_NAMES
from ..spec import LibParams, PresetSpec, compare
from ..timing import Bench
from .base import Adapter, BenchOrReason, Probe, Session, precision_bits, probe_module, rng_values, unavailable

SEAL_MAX_PRIME_BITS = 60
SEAL_TABLE_MAX_LOG_N = 15


def galois_elt(step: int, n: int) -> int:
    """SEAL's Galois element for a left rotation by ``step`` > 0: 3^step mod 2N (GaloisTool's generator)."""
    return pow(3, step, 2 * n)


class _SealSession(Session):
    def __init__(self, spec: PresetSpec) -> None:
        import tenseal.sealapi as s

        self.s = s
        self.spec = spec
        n = spec.ring_degree
        self.n = n
        special = min(max(spec.p_bits or [SEAL_MAX_PRIME_BITS]), SEAL_MAX_PRIME_BITS)
        self.chain: List[int] = list(spec.q_bits) + [special]
        self.sec_level, security, notes = self._security(spec)
        self.parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
        self.parms.set_poly_modulus_degree(n)
        self.parms.set_coeff_modulus(s.CoeffModulus.Create(n, self.chain))
        self.ctx = s.SEALContext(self.parms, True, self.sec_level)
        if not self.ctx.parameters_set():
            raise RuntimeError(f"SEAL rejected the parameters: {self.ctx.parameters_error_message()}")
        self.kg = s.KeyGenerator(self.ctx)
        self.sk = self.kg.secret_key()
        self.pk = s.PublicKey()
        self.kg.create_public_key(self.pk)
        self.rk = s.RelinKeys()
        self.kg.create_relin_keys(self.rk)
        self.gk = s.GaloisKeys()
        self.kg.create_galois_keys([galois_elt(1, n)], self.gk)
        self.encoder = s.CKKSEncoder(self.ctx)
        self.encryptor = s.Encryptor(self.ctx, self.pk)
        self.decryptor = s.Decryptor(self.ctx, self.sk)
        self.ev = s.Evaluator(self.ctx)
        self.scale = float(2 ** spec.scale_bits)
        self.x = rng_values(spec.slots, 1)
        self.y = rng_values(spec.slots, 2)
        self.xl = self.x.tolist()
        self.yl = self.y.tolist()
        self.X = self._encrypt(self.xl)
        self.Y = self._encrypt(self.yl)
        self._steps = iter(range(2, n // 2))
        levels = len(self.chain) - 2
        self.params = LibParams(
            ring_degree=n, levels=levels, q_bits=self.chain[:-1], p_bits=[special],
            dnum=levels + 1, scale_bits=spec.scale_bits, secret="uniform ternary",
            security=security, threads_effective=1,
            notes=notes + ["SEAL is single-threaded: one figure serves every --threads value",
                           "dnum is fixed by SEAL: one digit per ciphertext prime, one special prime",
                           "key and ciphertext sizes are computed from SEAL's layout (sealapi has no size call)"],
        )
        self.params.differences = compare(spec, self.params)

    @staticmethod
    def _security(spec: PresetSpec):
        s_mod = __import__("tenseal.sealapi", fromlist=["SEC_LEVEL_TYPE"])
        log_qp = sum(spec.q_bits) + min(max(spec.p_bits or [60]), SEAL_MAX_PRIME_BITS)
        if spec.insecure:
            return s_mod.SEC_LEVEL_TYPE.NONE, "INSECURE (test preset)", []
        if spec.log_n <= SEAL_TABLE_MAX_LOG_N:
            return s_mod.SEC_LEVEL_TYPE.TC128, f"128-bit (SEAL's own check, log QP {log_qp})", []
        if log_qp > spec.he_standard_max_log_qp:
            raise RuntimeError(f"log QP {log_qp} exceeds the 128-bit bound {spec.he_standard_max_log_qp}")
        return (s_mod.SEC_LEVEL_TYPE.NONE,
                f"128-bit by the HE standard (log QP {log_qp} <= {spec.he_standard_max_log_qp}); "
                "made with sec_level NONE",
                [f"SEAL's 128-bit table stops at N=2^{SEAL_TABLE_MAX_LOG_N} (TenSEAL refuses N=2^{spec.log_n}); "
                 "the context is made with sec_level NONE after checking the HE-standard bound"])

    # -- helpers -----------------------------------------------------------
    def _encrypt(self, values: List[float]):
        s = self.s
        pt = s.Plaintext()
        self.encoder.encode(values, self.scale, pt)
        ct = s.Ciphertext()
        self.encryptor.encrypt(pt, ct)
        return ct

    def _decrypt(self, ct) -> List[float]:
        pt = self.s.Plaintext()
        self.decryptor.decrypt(ct, pt)
        return self.encoder.decode_double(pt)

    def _product(self):
        out = self.s.Ciphertext()
        self.ev.multiply(self.X, self.Y, out)
        self.ev.relinearize_inplace(out, self.rk)
        return out

    def _copy(self, ct):
        """A copy of ``ct`` (mod_switch_to its own level copies; sealapi has no copy constructor)."""
        out = self.s.Ciphertext()
        self.ev.mod_switch_to(ct, ct.parms_id(), out)
        return out

    # -- ops ---------------------------------------------------------------
    def bench(self, op: str) -> BenchOrReason:
        s, ev = self.s, self.ev
        if op in LINALG_OP_NAMES:  # TenSEAL's own matrix products, on a context of their own
            from .tenseal_linalg import linalg_bench

            return linalg_bench(op)
        if op == "ntt_limb":
            return unavailable("sealapi exposes the NTT only on whole ciphertexts (see ntt_all)")
        if op == "ntt_all":
            def run_ntt(ct):
                ev.transform_from_ntt_inplace(ct)
                ev.transform_to_ntt_inplace(ct)
            return Bench(setup=lambda: self._copy(self.X), run=run_ntt, divisor=2,
                         note="inverse + forward NTT of a 2-polynomial ciphertext, halved")
        if op == "encode":
            return Bench(run=lambda _: self.encoder.encode(self.xl, self.scale, s.Plaintext()),
                         note="input is a Python list of floats (the type sealapi takes)")
        if op == "encrypt":
            return Bench(run=lambda _: self._encrypt(self.xl), note="encode + Encryptor.encrypt (public key)")
        if op == "decrypt":
            return Bench(run=lambda _: self._decrypt(self.X), note="Decryptor.decrypt + decode_double")
        if op == "add":
            return Bench(run=lambda _: ev.add(self.X, self.Y, s.Ciphertext()))
        if op == "mul_plain":
            def run_mul_plain(_):
                pt = s.Plaintext()
                self.encoder.encode(self.yl, self.X.parms_id(), self.scale, pt)
                out = s.Ciphertext()
                ev.multiply_plain(self.X, pt, out)
                ev.rescale_to_next_inplace(out)
                return out
            return Bench(run=run_mul_plain, note="encode + multiply_plain + rescale_to_next")
        if op == "mul_relin":
            return Bench(run=lambda _: self._product(), note="multiply + relinearize")
        if op == "rescale":
            return Bench(setup=self._product, run=lambda ct: ev.rescale_to_next_inplace(ct))
        if op == "mul_relin_rescale":
            def run_mrr(_):
                out = self._product()
                ev.rescale_to_next_inplace(out)
                return out
            return Bench(run=run_mrr)
        if op == "rotate":
            return Bench(run=lambda _: ev.rotate_vector(self.X, 1, self.gk, s.Ciphertext()))
        if op == "rotate_hoisted":
            return unavailable(f"SEAL has no hoisted rotations: {HOISTED_K} rotations cost "
                               f"{HOISTED_K} x rotate")
        if op == "keygen_context":
            def run_ctx(_):
                ctx = s.SEALContext(self.parms, True, self.sec_level)
                kg = s.KeyGenerator(ctx)
                kg.create_public_key(s.PublicKey())
                kg.create_relin_keys(s.RelinKeys())
                return ctx
            return Bench(run=run_ctx, note="SEALContext + secret, public and relinearization keys")
        if op == "keygen_public":
            return Bench(run=lambda _: self.kg.create_public_key(s.PublicKey()))
        if op == "keygen_relin":
            return Bench(run=lambda _: self.kg.create_relin_keys(s.RelinKeys()))
        if op == "keygen_galois":
            return Bench(setup=lambda: galois_elt(next(self._steps), self.n),
                         run=lambda elt: self.kg.create_galois_keys([elt], s.GaloisKeys()),
                         note="create_galois_keys for one Galois element")
        return unavailable(f"op '{op}' is not defined for SEAL")

    def metrics(self) -> Dict[str, Optional[float]]:
        n, word = self.n, 8
        limbs_q = len(self.chain) - 1
        limbs_qp = len(self.chain)
        got = self._decrypt(self._product_rescaled())
        key = limbs_q * 2 * limbs_qp * n * word
        return {
            "ciphertext_bytes": float(self.X.size() * self.X.coeff_modulus_size() * n * word),
            "public_key_bytes": float(2 * limbs_qp * n * word),
            "relin_key_bytes": float(key),
            "galois_key_bytes": float(key),
            "precision_bits": precision_bits(got, self.x * self.y),
            "fresh_precision_bits": precision_bits(self._decrypt(self.X), self.x),
        }

    def _product_rescaled(self):
        out = self._product()
        self.ev.rescale_to_next_inplace(out)
        return out


class TensealAdapter(Adapter):
    """SEAL (via TenSEAL)."""

    name = "tenseal"
    thread_aware = False

    def __init__(self) -> None:
        self._session: Optional[_SealSession] = None

    def probe(self) -> Probe:
        return probe_module("tenseal.sealapi", "tenseal")

    def open(self, spec: PresetSpec, threads: int) -> Session:
        if self._session is None or self._session.spec != spec:
            self._session = _SealSession(spec)
        return self._session

    def release(self) -> None:
        self._session = None
