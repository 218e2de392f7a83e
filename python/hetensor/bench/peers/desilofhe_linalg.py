"""desilofhe's batched matrix products for the linalg ops (issue 5), next to hetensor's.

desilofhe 2.0 multiplies matrices in its matrix form: ``Engine(shape=(256, b,
b))`` (b = 16, 32 or 64 only; 17 levels at b = 64, a 637.5 MB ciphertext)
holds 256 b x b matrices per ciphertext, and ``matrix_multiply(X, Y, key)``
returns ``X_t @ Y_t^T`` for every item t (ciphertext x ciphertext or
ciphertext x plaintext), one level. Other shapes are cut into b x b blocks:

- item ``t = kk G + g`` holds X's block (i, k) and the right operand's block
  (k, j) transposed, where g = i pj + j is one of the G output blocks and
  k = c kc + kk the inner block that call c handles (kc a power of two with
  kc G <= 256);
- the calls' outputs are added, then the kc partial sums of each output block
  by log2(kc) rolls along the batch axis (fixed roll keys), so items g < G
  hold the result.

The client arranges both operands into items before encrypting them (and
the right one as blocks of its transpose), outside the timer, like hetensor's
layouts. LoRA chains two products; the first one's items are arranged so that
its result lands where the second needs it (X's blocks repeated over B's
column blocks), so no mask or broadcast is needed.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..ops_linalg import Footprint, LinalgInputs, case_bench, linalg_inputs
from .base import BenchOrReason, unavailable

BATCH = 256
TIERS = (16, 32, 64)
DEFAULT_BLOCK = 64  # the only tier that holds the 64 x 64 products of the catalogue


@dataclass(frozen=True)
class Plan:
    """How one blocked product Z (mi x pj blocks) = sum over nk inner blocks fills the batch."""

    mi: int
    nk: int
    pj: int
    kc: int     # inner blocks per call (a power of two)
    calls: int

    @property
    def groups(self) -> int:
        """G: output blocks, the stride between the partial sums of one block."""
        return self.mi * self.pj

    @property
    def rolls(self) -> int:
        return int(math.log2(self.kc))

    @property
    def block_products(self) -> int:
        return self.mi * self.nk * self.pj


def plan(mi: int, nk: int, pj: int, batch: int = BATCH) -> Plan:
    """The fewest calls for mi x nk x pj block products, partial sums added by rolls."""
    if mi * pj > batch:
        raise ValueError(f"{mi * pj} output blocks do not fit one batch of {batch}")
    kc = min(1 << (nk - 1).bit_length(), 1 << int(math.log2(batch // (mi * pj))))
    return Plan(mi, nk, pj, kc, -(-nk // kc))


def blocks(mat: np.ndarray, b: int) -> np.ndarray:
    """``mat`` zero-padded and cut into b x b blocks: shape (rows/b, cols/b, b, b)."""
    r, c = -(-mat.shape[0] // b), -(-mat.shape[1] // b)
    pad = np.zeros((r * b, c * b))
    pad[: mat.shape[0], : mat.shape[1]] = mat
    return pad.reshape(r, b, c, b).transpose(0, 2, 1, 3)


def arrange(p: Plan, b: int, block: Callable[[int, int, int], Optional[np.ndarray]]) -> List[np.ndarray]:
    """The items of each call: ``block(i, k, j)`` goes to item kk G + i pj + j of call k // kc."""
    out = [np.zeros((BATCH, b, b)) for _ in range(p.calls)]
    for k in range(p.nk):
        c, kk = divmod(k, p.kc)
        for i in range(p.mi):
            for j in range(p.pj):
                blk = block(i, k, j)
                if blk is not None:
                    out[c][kk * p.groups + i * p.pj + j] = blk
    return out


def unblock(items: np.ndarray, p: Plan, shape: tuple) -> np.ndarray:
    """The m x n matrix whose block (i, j) is item i pj + j."""
    b = items.shape[-1]
    z = items[: p.groups].reshape(p.mi, p.pj, b, b).transpose(0, 2, 1, 3).reshape(p.mi * b, p.pj * b)
    return z[: shape[0], : shape[1]]


class _Engine:
    """desilofhe's matrix-form engine with its keys (made once, untimed)."""

    def __init__(self, b: int, threads: int, level: Optional[int]) -> None:
        import desilofhe

        self.b = b
        self.e = e = desilofhe.Engine(shape=(BATCH, b, b), mode="cpu", thread_count=threads)
        self.max_level = int(e.max_level)
        self.level = self.max_level if level is None else min(int(level), self.max_level)
        self.at = () if self.level == self.max_level else (self.level,)
        self.sk = e.create_secret_key()
        self.pk = e.create_public_key(self.sk)
        t0 = time.perf_counter()
        self.mk = e.create_matrix_multiplication_key(self.sk, *self.at)
        self.mk_s = time.perf_counter() - t0
        self.roll_keys: Dict[int, Any] = {}

    def roll_key(self, shift: int):
        """A fixed key rolling the batch axis so that item t receives item t + shift."""
        if shift not in self.roll_keys:
            self.roll_keys[shift] = self.e.create_fixed_roll_key(self.sk, (BATCH - shift) % BATCH, 0)
        return self.roll_keys[shift]

    def encrypt(self, items: np.ndarray):
        return self.e.encrypt(items, self.pk, *self.at)

    def encode(self, items: np.ndarray):
        return self.e.encode(items, self.level)

    def decrypt(self, ct) -> np.ndarray:
        return np.asarray(self.e.decrypt(ct, self.sk)).reshape(BATCH, self.b, self.b)


def arrangement(inp: LinalgInputs, b: int):
    """(plans, left items per call, right items per call for each product) of ``inp`` in b x b blocks.

    The right items hold transposed blocks (desilofhe multiplies by the transpose). Raises
    ValueError when the op does not fit the batch (or a LoRA rank exceeds b).
    """
    mats = inp.mats
    xb = blocks(mats["x"], b)
    mi, nk = xb.shape[:2]
    if inp.kind == "lora":
        if mats["a"].shape[1] > b:
            raise ValueError(f"rank {mats['a'].shape[1]} exceeds the block size {b}")
        ab, bb = blocks(mats["a"], b), blocks(mats["b"], b)  # nk x 1 and 1 x pj blocks
        # First product: item (i, j) gets H_i = sum_k X_ik A_k for every j (the items the second
        # product multiplies by B_j), so its output is already in place.
        plans = [plan(mi, nk, bb.shape[1]), plan(mi, 1, bb.shape[1])]
        rights = [arrange(plans[0], b, lambda i, k, j: ab[k, 0].T),
                  arrange(plans[1], b, lambda i, k, j: bb[0, j].T)]
    else:
        rb = blocks(mats["w"] if inp.kind == "cpmm" else mats["y"], b)
        plans = [plan(mi, nk, rb.shape[1])]
        rights = [arrange(plans[0], b, lambda i, k, j: rb[k, j].T)]
    return plans, arrange(plans[0], b, lambda i, k, j: xb[i, k]), rights


def simulate(plans: List[Plan], lefts: List[np.ndarray], rights: List[List[np.ndarray]]) -> np.ndarray:
    """The timed run in float64 numpy (items multiplied as X_t @ Y_t^T, rolls as np.roll): its model."""
    def product(ls, rs, p):
        acc = sum(left @ right.transpose(0, 2, 1) for left, right in zip(ls, rs))
        for s in reversed(range(p.rolls)):
            acc = acc + np.roll(acc, -(p.groups << s), axis=0)
        return acc

    out = product(lefts, rights[0], plans[0])
    for p, rs in zip(plans[1:], rights[1:]):
        out = product([out], rs, p)
    return out


class DesiloLinalgCase:
    """One linalg op under desilofhe's batched products: operands arranged and keys made up front."""

    def __init__(self, op: str, threads: int = 1, block: int = DEFAULT_BLOCK, level: Optional[int] = None,
                 seed: int = 5, engine: Optional[_Engine] = None) -> None:
        self.op = op
        self.inp: LinalgInputs = linalg_inputs(op, seed)
        self.b = block
        self.timings: Dict[str, List[float]] = {"call": [], "roll": []}
        self.bits: Optional[float] = None
        self.plans, lefts, rights = arrangement(self.inp, block)
        self.shape = self.inp.ref.shape
        t0 = time.perf_counter()
        self.eng = eng = engine or _Engine(block, threads, level)  # an engine may serve several ops
        self.lefts = [eng.encrypt(t) for t in lefts]
        encode = eng.encode if self.inp.kind == "cpmm" else eng.encrypt  # W is plaintext
        self.rights = [[encode(t) for t in items] for items in rights]
        for p in self.plans:
            for s in range(p.rolls):
                eng.roll_key(p.groups << s)
        self.setup_s = time.perf_counter() - t0
        self.level_in = int(self.lefts[0].level)
        self.level_out: Optional[int] = None

    # -- the timed call ------------------------------------------------------
    def _product(self, lefts: List[Any], rights: List[Any], p: Plan):
        e, mk = self.eng.e, self.eng.mk
        acc = None
        for left, right in zip(lefts, rights):
            t0 = time.perf_counter()
            z = e.matrix_multiply(left, right, mk)
            self.timings["call"].append(time.perf_counter() - t0)
            acc = z if acc is None else e.add(acc, z)
        for s in reversed(range(p.rolls)):  # add the partial sums kc/2, kc/4, ... items apart
            t0 = time.perf_counter()
            acc = e.add(acc, e.roll(acc, self.eng.roll_key(p.groups << s)))
            self.timings["roll"].append(time.perf_counter() - t0)
        return acc

    def run(self, _: Any = None):
        out = self._product(self.lefts, self.rights[0], self.plans[0])
        if self.inp.kind == "lora":
            out = self._product([out], self.rights[1], self.plans[1])
        return out

    def check(self, _: Any, out) -> None:
        """Untimed, after the first sample: precision against float64 numpy, levels."""
        if self.bits is not None:
            return
        z = unblock(self.eng.decrypt(out), self.plans[-1], self.shape)
        err = float(np.max(np.abs(z - self.inp.ref)))
        self.bits = float("inf") if err == 0 else -math.log2(err)
        self.level_out = int(out.level)

    def note(self) -> str:
        """What desilofhe computed and how it differs from the op; per-call figures from the samples."""
        eng, b, kind = self.eng, self.b, self.inp.kind
        calls = sum(p.calls for p in self.plans)
        rolls = sum(p.rolls for p in self.plans)
        used = sum(p.block_products for p in self.plans)
        med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
        call_s, roll_s = med(self.timings["call"]), med(self.timings["roll"])
        what = "ciphertext x plaintext" if kind == "cpmm" else "ciphertext x ciphertext"
        bits = "?" if self.bits is None else f"{self.bits:.1f}"
        lvl = f"{self.level_in}->{self.level_out}" if self.level_out is not None else f"{self.level_in}->?"
        keys = f"matrix-multiplication key {eng.mk.nbytes / 1e9:.2f} GB made in {eng.mk_s:.0f} s"
        if eng.roll_keys:
            keys += f", {len(eng.roll_keys)} roll keys {sum(k.nbytes for k in eng.roll_keys.values()) / 1e6:.0f} MB"
        operands = sum(int(c.nbytes) for c in self.lefts) + sum(int(c.nbytes) for r in self.rights for c in r)
        level_note = "" if eng.level == eng.max_level else f" (keys and operands at level {eng.level}, the smaller-key option)"
        return (f"desilofhe matrix form Engine(shape=({BATCH},{b},{b})), matrix_multiply = X_t @ Y_t^T for each of "
                f"{BATCH} items, {what}: {calls} call(s) using {used} of {calls * BATCH} items ({b}x{b} block "
                f"products{', the first repeating X_i @ A for each column block of B' if kind == 'lora' else ''}), "
                f"{rolls} roll(s) along the batch axis to add partial sums; per call {call_s:.2f} s"
                f"{f', per roll {roll_s:.2f} s' if rolls else ''}; amortised {call_s / BATCH:.3f} s per {b}x{b} product in a full batch; "
                f"levels {lvl} of {eng.max_level}{level_note}; {bits} bits; untimed: {keys}, operands arranged into "
                f"items (right operand as transposed blocks) and encrypted ({self.setup_s:.0f} s in all), operands "
                f"{operands / 1e9:.2f} GB, ciphertext {self.lefts[0].nbytes / 1e6:.0f} MB")


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    return int(value) if value else None


def _env_level(op: str) -> Optional[int]:
    """HETENSOR_BENCH_DESILO_LEVEL: a level, or ``min`` for the levels the op consumes."""
    value = os.environ.get("HETENSOR_BENCH_DESILO_LEVEL", "")
    if value == "min":
        return 2 if op.startswith("lora_") else 1
    return int(value) if value else None


def linalg_bench(op: str, threads: int, block: Optional[int] = None, level: Optional[int] = None) -> BenchOrReason:
    """The Bench of a linalg op for desilofhe (the note is completed after the samples).

    HETENSOR_BENCH_DESILO_BLOCK picks the tier (16, 32, 64; default 64) and
    HETENSOR_BENCH_DESILO_LEVEL a lower level for keys and operands (smaller and faster keys;
    ``min``: just the levels the op consumes). By default both are at the tier's top level.
    """
    block = block or _env_int("HETENSOR_BENCH_DESILO_BLOCK") or DEFAULT_BLOCK
    level = level if level is not None else _env_level(op)
    if block not in TIERS:
        return unavailable(f"desilofhe's matrix form has blocks of {', '.join(map(str, TIERS))} only, not {block}")
    mem = Footprint()
    try:
        case = DesiloLinalgCase(op, threads=threads, block=block, level=level)
    except ValueError as exc:
        return unavailable(f"desilofhe's batched {block}x{block} products cannot express {op}: {exc}")
    mem.setup_done()
    return case_bench(case, mem)


__all__ = ["BATCH", "DesiloLinalgCase", "Plan", "arrange", "arrangement", "blocks", "linalg_bench", "plan", "simulate",
           "unblock"]
