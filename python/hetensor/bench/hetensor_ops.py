"""The ops as hetensor runs them (the library under test)."""

from __future__ import annotations

import itertools
from typing import Dict, Optional

import numpy as np

from .ops import HOISTED_K
from .ops_linalg import LINALG_OP_NAMES
from .ops_linalg import hetensor_bench as linalg_bench
from .ops_boot import hetensor_bench as boot_bench
from .peers.base import Adapter, BenchOrReason, Probe, Session, precision_bits, rng_values, unavailable
from .spec import LibParams, PresetSpec
from .timing import Bench


def device_support(device: str) -> Optional[str]:
    """None when hetensor can run whole ops on ``device``; otherwise the reason it cannot."""
    import hetensor as ht

    if device == "cpu":
        return None
    if not device.startswith("cuda"):
        return f"unknown device '{device}' (use cpu or cuda:N)"
    if not ht.cuda_available():
        return (
            f"{device}: no usable CUDA device (hetensor.cuda_available() is False: no CUDA backend compiled in, "
            "or no GPU); the GPU mode is not available here; skipped"
        )
    index = device.split(":", 1)[1] if ":" in device else "0"
    if not index.isdigit() or int(index) >= ht.cuda.device_count():
        return f"{device}: no such CUDA device (the driver reports {ht.cuda.device_count()}); skipped"
    return None


class _HetensorSession(Session):
    def __init__(self, adapter: "HetensorAdapter", spec: PresetSpec, threads: int) -> None:
        import hetensor as ht

        self._ht = ht
        self.spec = spec
        self.ctx = adapter._ctx
        self.eng = self.ctx._engine
        self.device = adapter.device
        self.x = rng_values(self.ctx.slots, 1)
        self.y = rng_values(self.ctx.slots, 2)
        self.X = adapter._X
        self.Y = adapter._Y
        self._adapter = adapter
        self.params = LibParams(
            ring_degree=self.ctx.ring_degree,
            levels=self.ctx.max_level,
            q_bits=[int(q).bit_length() for q in self.eng.q],
            p_bits=[int(p).bit_length() for p in self.eng.p],
            dnum=self.ctx.dnum,
            scale_bits=spec.scale_bits,
            secret=spec.secret,
            security="INSECURE (test preset)" if spec.insecure else f"128-bit (HE standard, log QP {self.ctx.log_qp:.0f} <= {spec.he_standard_max_log_qp})",
            threads_effective=threads,
        )

    # -- ops ---------------------------------------------------------------
    def bench(self, op: str) -> BenchOrReason:
        ht, ctx, eng, X, Y = self._ht, self.ctx, self.eng, self.X, self.Y
        core = ht._core
        if op in LINALG_OP_NAMES:
            return linalg_bench(self, op)
        if op in ("bootstrap", "bootstrap_pair"):
            return boot_bench(self, op)
        if op == "ntt_limb":
            q = int(eng.q[0])
            a = np.random.default_rng(3).integers(0, q, ctx.ring_degree, dtype=np.uint64)
            return Bench(run=lambda _: core.ntt_inverse(core.ntt_forward(a, q), q),
                         note="hetensor._core.ntt_forward/ntt_inverse on a numpy array")
        if op == "ntt_all":
            qs = [int(q) for q in eng.q]
            rng = np.random.default_rng(4)
            limbs = [rng.integers(0, q, ctx.ring_degree, dtype=np.uint64) for q in qs]

            def run_all(_):
                for arr, q in zip(limbs, qs):
                    core.ntt_inverse(core.ntt_forward(arr, q), q)

            return Bench(run=run_all, note=f"{len(qs)} limbs, one Python call per limb and direction")
        if op == "encode":
            if hasattr(eng, "encode"):
                rows = self.x.astype(np.complex128).reshape(1, -1)
                return Bench(run=lambda _: eng.encode(rows))
            return unavailable("hetensor's API has no standalone encode yet: encoding runs inside "
                               "Context.encrypt and plaintext ops (see 'encrypt', 'mul_plain')")
        if op == "encrypt":
            return Bench(run=lambda _: ctx.encrypt(self.x), note="Context.encrypt (public key), float64 values")
        if op == "decrypt":
            return Bench(run=lambda _: ctx.decrypt(X), note="Context.decrypt, float64 values out")
        if op == "add":
            return Bench(run=lambda _: X + Y)
        if op == "mul_plain":
            return Bench(run=lambda _: X * self.y, note="X * numpy array: encode + multiply + rescale")
        if op == "mul_relin":
            return Bench(run=lambda _: eng.relinearize(eng.multiply_no_relin(X._ct, Y._ct)),
                         note="engine.multiply_no_relin + engine.relinearize")
        if op == "rescale":
            return Bench(setup=lambda: eng.relinearize(eng.multiply_no_relin(X._ct, Y._ct)),
                         run=lambda ct: eng.rescale(ct))
        if op == "mul_relin_rescale":
            return Bench(run=lambda _: X * Y, note="X * Y")
        if op == "rotate":
            return Bench(run=lambda _: X.rotate(1))
        if op == "rotate_hoisted":
            steps = list(range(1, HOISTED_K + 1))
            if hasattr(X, "rotate_many"):
                return Bench(run=lambda _: X.rotate_many(steps), note="CipherTensor.rotate_many")
            return Bench(run=lambda _: eng.rotate_hoisted(X._ct, steps), note="engine.rotate_hoisted")
        if op == "keygen_context":
            name = self.spec.preset
            return Bench(run=lambda _: ht.Context.from_preset(name),
                         note="Context.from_preset: parameters + secret, public and relinearization keys")
        if op in ("keygen_public", "keygen_relin"):
            return unavailable("not separable in hetensor's API: Context.from_preset makes the secret, "
                               "public and relinearization keys together (see keygen_context)")
        if op == "keygen_galois":
            kctx = self._adapter.key_context()
            return Bench(setup=lambda: next(self._adapter.new_steps),
                         run=lambda step: kctx.generate_rotation_keys([step]),
                         note="Context.generate_rotation_keys([k]) for a new step k each sample")
        return unavailable(f"op '{op}' is not defined for hetensor")

    def metrics(self) -> Dict[str, Optional[float]]:
        fresh = self._ht.Context.from_preset(self.spec.preset)
        before = fresh.key_bytes()
        fresh.generate_rotation_keys([1])
        galois = fresh.key_bytes() - before
        relin = int(fresh._engine.relin_key_bytes())
        del fresh
        prod = self.ctx.decrypt(self.X * self.Y)
        return {
            "ciphertext_bytes": float(self.X.nbytes),
            "public_key_bytes": float(before - relin),
            "relin_key_bytes": float(relin),
            "galois_key_bytes": float(galois),
            "precision_bits": precision_bits(prod, self.x * self.y),
            "fresh_precision_bits": precision_bits(self.ctx.decrypt(self.X), self.x),
        }


class HetensorAdapter(Adapter):
    """hetensor itself; contexts are made once per preset and reused across thread counts."""

    name = "hetensor"
    thread_aware = True

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._preset: Optional[str] = None
        self._ctx = None
        self._kctx = None
        self._X = self._Y = None
        self.new_steps = itertools.count(HOISTED_K + 1)  # rotation steps that have no key yet

    def probe(self) -> Probe:
        import hetensor as ht

        return Probe("ok", ht.__version__, "")

    def open(self, spec: PresetSpec, threads: int) -> Session:
        import hetensor as ht

        ht.set_num_threads(threads)
        if self._preset != spec.preset:
            self.release()
            self._ctx = ht.Context.from_preset(spec.preset, rotations=list(range(1, HOISTED_K + 1)))
            self._X = self._ctx.encrypt(rng_values(self._ctx.slots, 1))
            self._Y = self._ctx.encrypt(rng_values(self._ctx.slots, 2))
            self._preset = spec.preset
        return _HetensorSession(self, spec, threads)

    def key_context(self):
        """A context of the current preset for timing Galois key generation (keys pile up there)."""
        import hetensor as ht

        if self._kctx is None:
            self._kctx = ht.Context.from_preset(self._preset)
            self.new_steps = itertools.count(HOISTED_K + 1)
        return self._kctx

    def release(self) -> None:
        self._ctx = self._kctx = self._X = self._Y = None
        self._preset = None
