"""TenSEAL's matrix products for the linalg ops (issue 5), next to hetensor's.

TenSEAL has two:

- ``CKKSVector.mm``: an encrypted vector times a plaintext matrix (Halevi-Shoup
  diagonals, one rotation per row of the matrix, each diagonal encoded in the
  call). CPMM is then one call per row of X. Every row costs the same (same W,
  same rotations), so ONE row is timed and the sample scaled by m: the figure
  is the time of all m rows, measured on one.
- ``CKKSTensor.mm`` over encrypted tensors: X's m rows batched in the slots
  (one ciphertext per column of X) times a right operand with one ciphertext
  per element: n*p ciphertext products, no rotations. This serves the
  encrypted x encrypted ops (CCMM, LoRA), computed in full.

Parameters: TenSEAL's context refuses N = 2^16 (SEAL's 128-bit table stops
at 2^15 and TenSEAL has no way around it), so the products run at N = 2^14
(the ring of the issue's reference figures) with the shortest chain they
need, [60, 40 x depth, 60] (128-bit by SEAL's table), with no level left
after the product. N = 2^13 also holds these shapes and halves time and
memory (HETENSOR_BENCH_TENSEAL_LOGN=13). The context uses one thread
(TenSEAL's dispatcher would otherwise use every core).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, List, Optional

import numpy as np

from ..ops_linalg import Footprint, LinalgInputs, case_bench, linalg_inputs
from .base import BenchOrReason

LOG_N = 14
SCALE_BITS = 40
EDGE_BITS = 60


def _bits(got: np.ndarray, want: np.ndarray) -> float:
    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64).reshape(want.shape) - want)))
    return float("inf") if err == 0 else -math.log2(err)


class TensealLinalgCase:
    """One linalg op under TenSEAL: context, keys and operands made up front, the product timed."""

    def __init__(self, op: str, log_n: int = LOG_N, seed: int = 5) -> None:
        import tenseal as ts

        self.ts, self.op = ts, op
        self.inp: LinalgInputs = linalg_inputs(op, seed)
        depth = 2 if self.inp.kind == "lora" else 1
        self.chain = [EDGE_BITS] + [SCALE_BITS] * depth + [EDGE_BITS]
        self.n = 1 << log_n
        t0 = time.perf_counter()
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=self.n, coeff_mod_bit_sizes=self.chain,
                         n_threads=1)
        ctx.global_scale = 2.0 ** SCALE_BITS
        mats = self.inp.mats
        x = mats["x"]
        self.m = x.shape[0]
        if self.inp.kind == "cpmm":
            ctx.generate_galois_keys()  # SEAL's default set: powers of two (each step is a NAF of them)
            self.row = ts.ckks_vector(ctx, x[0].tolist())
            self.w = ts.plain_tensor(mats["w"])  # converted once, outside the timer
            self.ciphertexts = 1
        else:
            # m rows in the slots: the tensor is (1, n), one ciphertext per column of X.
            self.xt = ts.ckks_tensor(ctx, x.reshape(self.m, 1, -1), batch=True)
            names = ["y"] if self.inp.kind == "ccmm" else ["a", "b"]
            self.right = [ts.ckks_tensor(ctx, mats[k]) for k in names]  # one ciphertext per element
            self.ciphertexts = x.shape[1] + sum(mats[k].size for k in names)
        self.ctx = ctx
        self.setup_s = time.perf_counter() - t0
        self.bits: Optional[float] = None

    # -- the timed call ------------------------------------------------------
    def run(self, _: Any = None):
        if self.inp.kind == "cpmm":
            return self.row.mm(self.w)
        out = self.xt
        for right in self.right:
            out = out.mm(right)
        return out

    def check(self, _: Any, out) -> None:
        """Untimed, after the first sample: precision against float64 numpy."""
        if self.bits is not None:
            return
        if self.inp.kind == "cpmm":
            self.bits = _bits(out.decrypt(), self.inp.ref[0])
        else:
            self.bits = _bits(np.array(out.decrypt().tolist()), self.inp.ref)

    @property
    def divisor(self) -> float:
        # CPMM times one row: a divisor of 1/m scales the sample to all m rows.
        return 1.0 / self.m if self.inp.kind == "cpmm" else 1

    def note(self) -> str:
        """What TenSEAL computed, at which parameters, and how that differs from the op."""
        mats, kind = self.inp.mats, self.inp.kind
        bits = "?" if self.bits is None else f"{self.bits:.1f}"
        params = (f"TenSEAL at N=2^{int(math.log2(self.n))}, chain {self.chain} (no level left after the "
                  f"product; hetensor keeps the rest of the preset's chain), one thread")
        if kind == "cpmm":
            n, p = mats["w"].shape
            return (f"CKKSVector.mm (encrypted 1x{n} vector @ plaintext {n}x{p}, diagonal method: {n} rotations "
                    f"and {n} diagonal encodings per call); ONE row timed and scaled by {self.m}: the figure is the "
                    f"time of all {self.m} row products, of which one ran; {bits} bits on that row; "
                    f"{params}; setup (context, Galois keys) {self.setup_s:.1f} s untimed")
        shapes = " @ ".join(f"{mats[k].shape[0]}x{mats[k].shape[1]}" for k in (["x", "y"] if kind == "ccmm"
                                                                              else ["x", "a", "b"]))
        products = sum(int(np.prod(r.shape)) for r in self.right)
        return (f"CKKSTensor.mm {shapes}: X's {self.m} rows batched in the slots (one ciphertext per column), "
                f"right operand(s) with one ciphertext per element; {products} ciphertext x ciphertext products, "
                f"no rotations, {len(self.right)} level(s); {self.ciphertexts} ciphertexts encrypted untimed "
                f"({self.setup_s:.1f} s); {bits} bits; {params}")


def linalg_bench(op: str, log_n: Optional[int] = None) -> BenchOrReason:
    """The Bench of a linalg op for TenSEAL (the note is completed after the samples).

    HETENSOR_BENCH_TENSEAL_LOGN sets the ring (default 14; 13 still holds 128 rows and halves
    the memory of the one-ciphertext-per-element operands: LoRA needs ~17 GB at 2^14).
    """
    log_n = log_n or int(os.environ.get("HETENSOR_BENCH_TENSEAL_LOGN") or LOG_N)
    mem = Footprint()
    case = TensealLinalgCase(op, log_n=log_n)
    mem.setup_done()
    return case_bench(case, mem, divisor=case.divisor)


__all__: List[str] = ["TensealLinalgCase", "linalg_bench"]
