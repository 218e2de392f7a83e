"""Orion's (Lattigo v6's) full-slot bootstrapping for the ``bootstrap`` op.

Orion drives Lattigo's bootstrapping through two Go exports:
``NewBootstrapper(logP, slots)`` builds ``bootstrapping.ParametersLiteral`` with
only LogN, LogP, the scheme's secret distribution and LogSlots set, so the
circuit is Lattigo's default one (CoeffsToSlots 4 x 56 bits, EvalMod 8 x 60 bits:
cosine degree 30 on K = 16 with 3 double angles, message ratio 2^8,
SlotsToCoeffs 3 x 39 bits, ephemeral h = 32 secret around ModRaise), and
generates every key it needs; ``Bootstrap(ct, slots)`` runs it.

At N = 2^16 the residual (after-bootstrap) parameters are Lattigo's own default
set N16QP1546H192H32 (eprint 2022/024): log Q = [60, 40 x 9], log P = 5 x 61,
h = 192 sparse ternary secret, 2^40 scale. Orion's NewBootstrapper then yields
exactly that set's bootstrapping parameters (log QP = 1546, 128-bit by
Lattigo's estimate, under the HE-standard bound 1747 even for a dense secret).

At a smaller ring degree the same shapes are used for insecure (test) presets
only: cheap at N = 2^12, and clearly marked insecure; secure presets of other
ring degrees are reported unavailable (Orion's binding cannot set the custom
CoeffsToSlots/EvalMod scales of Lattigo's N = 2^15 set).

Lattigo keeps one scheme per process (Go globals): the bootstrapping scheme
replaces whatever scheme the Orion session had, and the session is rebuilt
after the samples (``finalize``).
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from ..spec import LibParams, PresetSpec
from .base import BenchOrReason, rng_values, unavailable
from .boot_common import (BOOT_INPUT_SEED, BootCase, BootFigures, BootOnlySession, measure_bits, peak_rss_bytes,
                          rss_bytes)

#: Lattigo's default bootstrapping circuit (bootstrapping.ParametersLiteral{} defaults, v6).
CTS_BITS: Tuple[int, ...] = (56,) * 4
EVAL_MOD_BITS: Tuple[int, ...] = (60,) * 8
STC_BITS: Tuple[int, ...] = (39,) * 3
CIRCUIT = ("CoeffsToSlots 4 levels x 56 bits, EvalMod 8 levels x 60 bits (cosine degree 30 on K=16, "
           "3 double angles, no arcsine, message ratio 2^8), SlotsToCoeffs 3 levels x 39 bits, "
           "ModRaise under an ephemeral h=32 secret (sparse-secret encapsulation)")


@dataclass(frozen=True)
class OrionBootConfig:
    """Residual CKKS parameters and bootstrapping special primes handed to Orion."""

    label: str
    log_n: int
    log_q: Tuple[int, ...]
    log_p: Tuple[int, ...]
    log_scale: int
    hamming_weight: int
    boot_log_p: Tuple[int, ...]
    secure: bool

    @property
    def boot_log_q(self) -> List[int]:
        """The bootstrapping chain: residual primes, then StC, EvalMod and CtS primes (Lattigo's order).

        An StC prime absorbs the residual scale when the sum stays under 61 bits (Lattigo's rule)."""
        stc = [b + self.log_scale if b + self.log_scale < 61 else b for b in STC_BITS]
        return list(self.log_q) + stc + list(EVAL_MOD_BITS) + list(CTS_BITS)

    @property
    def log_qp(self) -> int:
        return sum(self.boot_log_q) + sum(self.boot_log_p)

    def describe(self) -> str:
        q, p = self.boot_log_q, self.boot_log_p
        dnum = -(-len(q) // len(p))
        return (f"{self.label}: N=2^{self.log_n}, {2 ** (self.log_n - 1)} slots; residual log Q {list(self.log_q)} "
                f"(scale 2^{self.log_scale}), log P {list(self.log_p)}; bootstrapping log Q = {sum(q)} "
                f"({len(q)} primes), log P {list(p)}, log QP {self.log_qp}, dnum {dnum} for the bootstrapping keys; "
                f"secret sparse ternary h={self.hamming_weight}; {CIRCUIT}")


def decrypt_values(lib, ct: int) -> np.ndarray:
    """Decrypt and decode Orion ciphertext handle ``ct`` (``lib``: Orion's LattigoLibrary) into float64,
    freeing the Go-side plaintext and value array."""
    raw = lib.lib
    pt = raw.Decrypt(ct)
    res = raw.Decode(pt)
    out = np.ctypeslib.as_array(res.Data, shape=(int(res.Length),)).astype(np.float64)
    lib.FreeCArray(ctypes.cast(res.Data, ctypes.c_void_p))
    raw.DeletePlaintext(pt)
    return out


#: Lattigo's default bootstrapping set at N = 2^16 (N16QP1546H192H32), as Orion takes it.
N16_DEFAULT = OrionBootConfig(
    label="Lattigo default N16QP1546H192H32 via Orion", log_n=16, log_q=(60,) + (40,) * 9, log_p=(61,) * 5,
    log_scale=40, hamming_weight=192, boot_log_p=(61,) * 5, secure=True)


def config_for(spec: PresetSpec) -> Union[OrionBootConfig, str]:
    """Orion's bootstrapping parameters at the preset's ring degree, or why there are none."""
    if spec.log_n == 16:
        return N16_DEFAULT
    if spec.insecure and 10 <= spec.log_n < 16:
        return replace(N16_DEFAULT, label=f"Lattigo N16QP1546H192H32 shapes at N=2^{spec.log_n} (INSECURE, tests)",
                       log_n=spec.log_n, secure=False)
    return (f"Orion bootstraps with Lattigo's default circuit, 128-bit secure at N=2^16 only (Lattigo's N=2^15 set "
            f"needs CoeffsToSlots/EvalMod scales Orion's binding cannot set); preset {spec.preset} has "
            f"N=2^{spec.log_n}")


def security_of(cfg: OrionBootConfig, spec: PresetSpec) -> str:
    if not cfg.secure:
        return f"INSECURE (log QP {cfg.log_qp} at N=2^{cfg.log_n}; test configuration)"
    return (f"128-bit per Lattigo's estimate for h={cfg.hamming_weight} (+ ephemeral h=32) at log QP {cfg.log_qp} "
            f"(eprint 2022/024); also <= {spec.he_standard_max_log_qp}, the HE-standard bound for a uniform "
            f"ternary secret at N=2^16")


class OrionBootCase(BootCase):
    """Orion's scheme with bootstrapping keys and one level-0 ciphertext of values in [-1, 1]."""

    def __init__(self, lib, cfg: OrionBootConfig, spec: PresetSpec) -> None:
        from orion.backend.python.parameters import NewParameters

        self.lib, self.raw, self.cfg = lib, lib.lib, cfg
        self.slots = 1 << (cfg.log_n - 1)
        t0 = time.perf_counter()
        delete = getattr(lib, "DeleteScheme", None)  # declared once a scheme was made
        if delete is not None:
            delete()  # frees the session's scheme and keys first (one scheme per process)
        lib.setup_bindings(NewParameters({
            "ckks_params": {"LogN": cfg.log_n, "LogQ": list(cfg.log_q), "LogP": list(cfg.log_p),
                            "LogScale": cfg.log_scale, "H": cfg.hamming_weight, "RingType": "standard"},
            "boot_params": {"LogP": list(cfg.boot_log_p)},
            "orion": {"backend": "lattigo"},
        }))
        lib.NewKeyGenerator()
        lib.GenerateSecretKey()
        lib.GeneratePublicKey()
        lib.GenerateRelinearizationKey()
        lib.GenerateEvaluationKeys()
        lib.NewEncoder()
        lib.NewEncryptor()
        lib.NewDecryptor()
        lib.NewEvaluator()  # Bootstrap's final scaling needs it; it also makes Orion's power-of-two keys
        setup_s = time.perf_counter() - t0
        rss0 = rss_bytes()
        t1 = time.perf_counter()
        lib.NewBootstrapper(list(cfg.boot_log_p), self.slots)  # Lattigo: parameters, GenEvaluationKeys, evaluator
        keygen_s = time.perf_counter() - t1
        key_growth = rss_bytes() - rss0
        # Values cross Orion's binding as float32, both ways.
        self.x = rng_values(self.slots, BOOT_INPUT_SEED)
        self.x32 = self.x.astype(np.float32)
        c_in = (ctypes.c_float * self.slots)(*self.x32.tolist())
        pt = self.raw.Encode(c_in, self.slots, 0, 1 << cfg.log_scale)
        self.ct_in = self.raw.Encrypt(pt)  # level 0: the state of a ciphertext that needs bootstrapping
        self.raw.DeletePlaintext(pt)
        self.figures = BootFigures(
            library=f"Orion/Lattigo Bootstrap of a full-slot ({self.slots}) level-0 ciphertext",
            parameters=cfg.describe(), security=security_of(cfg, spec),
            keygen_s=keygen_s, setup_s=setup_s, key_bytes=float(key_growth),
            key_bytes_method="estimate: RSS growth over NewBootstrapper (keys + CtS/StC plaintext matrices + "
                             "Go heap slack; the binding reports no key sizes)",
            peak_rss_setup=peak_rss_bytes(), input_level=int(self.raw.GetCiphertextLevel(self.ct_in)),
            notes=["values cross Orion's binding as float32 (input and output): this caps precision near 24 bits",
                   "Lattigo runs one op on one goroutine (no intra-op parallelism): one figure serves every "
                   "--threads value; CPU/wall above 1 is Go's concurrent garbage collector",
                   "GOMAXPROCS=" + os.environ.get("GOMAXPROCS", f"unset (Go uses all {os.cpu_count()} cores)")])

    def bootstrap_once(self) -> int:
        return self.raw.Bootstrap(self.ct_in, self.slots)

    def check(self, out: int) -> None:
        got = decrypt_values(self.lib, out)[: self.slots]
        self.figures.bits = measure_bits(got, self.x)
        self.figures.extra_bits["the float32 input Orion encrypted"] = measure_bits(got, self.x32.astype(np.float64))
        self.figures.levels_left = int(self.raw.GetCiphertextLevel(out))

    def drop(self, out) -> None:
        if isinstance(out, int):
            self.raw.DeleteCiphertext(out)


def params_of(cfg: OrionBootConfig, spec: PresetSpec) -> LibParams:
    """The LibParams record of the bootstrapping scheme (the chain is the bootstrapping one)."""
    q = cfg.boot_log_q
    return LibParams(
        ring_degree=1 << cfg.log_n, levels=len(cfg.log_q) - 1, q_bits=q, p_bits=list(cfg.boot_log_p),
        dnum=-(-len(q) // len(cfg.boot_log_p)), scale_bits=cfg.log_scale,
        secret=f"sparse ternary h={cfg.hamming_weight} (ephemeral h=32 around ModRaise)",
        security=security_of(cfg, spec), threads_effective=1,
        notes=[cfg.describe(), "levels = levels left after bootstrapping (the residual chain)"])


def bootstrap_bench(lib, spec: PresetSpec, after: Optional[Callable[[], None]] = None) -> BenchOrReason:
    """The Bench of ``bootstrap`` for Orion; ``after`` runs once the samples are done
    (the Orion session rebuilds its own scheme there)."""
    cfg = config_for(spec)
    if isinstance(cfg, str):
        return unavailable(cfg)
    case = OrionBootCase(lib, cfg, spec)

    def finalize() -> None:
        case.drop(case.ct_in)
        lib.DeleteScheme()  # the bootstrapping keys go; the session (if any) makes its scheme again
        if after is not None:
            after()

    return case.bench(finalize)


def session_bench(session) -> BenchOrReason:
    """``bootstrap`` from an ordinary Orion session (orion_peer._OrionSession): its scheme is
    replaced by the bootstrapping one for the samples and rebuilt afterwards."""
    if isinstance(config_for(session.spec), str):
        return unavailable(config_for(session.spec))  # type: ignore[arg-type]
    return bootstrap_bench(session.lib, session.spec, after=session._build)


def _library(adapter):
    """The adapter's LattigoLibrary (loaded on first use, shared with its ordinary sessions)."""
    if adapter._lib is None:
        from orion.backend.lattigo.bindings import LattigoLibrary

        adapter._lib = LattigoLibrary()
    return adapter._lib


def boot_session(adapter, spec: PresetSpec, threads: int) -> BootOnlySession:
    """The session of a bootstrapping preset (orion_peer.OrionAdapter.open): nothing is made
    until ``bootstrap`` is asked for."""
    cfg = config_for(spec)
    if isinstance(cfg, str):
        params = LibParams(ring_degree=spec.ring_degree, levels=0, q_bits=None, p_bits=None, dnum=None,
                           scale_bits=None, secret="-", security="-", threads_effective=1, notes=[cfg])
    else:
        params = params_of(cfg, spec)
    return BootOnlySession("Orion", spec, threads, params, lambda: bootstrap_bench(_library(adapter), spec))


__all__ = ["N16_DEFAULT", "OrionBootCase", "OrionBootConfig", "boot_session", "bootstrap_bench", "config_for",
           "decrypt_values", "session_bench"]
