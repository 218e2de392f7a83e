"""Matrix-product ops of the benchmark suite (issue 5): CPMM, CCMM, LoRA, square CCMM.

These are heavy at n16 (minutes of key generation and weight encoding), so
they form the group ``linalg`` and are not part of ``--ops all``:

    python -m hetensor.bench --preset n16 --ops linalg --repeat 3

Each op times the product alone: keys (from ``ctx.rotation_steps_for``),
encryption and the encoding of plaintext weights happen before the timer
(the encoding in the untimed warm-up call). The note of every record gives
the algorithm, rotations (hoisted), key switches, plaintext and ciphertext
products, levels consumed, rotation keys and the precision in bits against
float64 numpy, measured on the first call.
"""

from __future__ import annotations

import math
import os
from typing import Any, List

import numpy as np

#: (name, group, description) of each op; ops.py turns them into OpInfo records.
LINALG_OP_SPECS = [
    ("cpmm_128x768x768", "linalg", "X @ W: encrypted 128x768 activation times a plaintext 768x768 weight"),
    ("ccmm_128x64x128", "linalg", "Q @ K^T: encrypted 128x64 times encrypted (128x64)^T, attention scores"),
    ("lora_128x768x8x768", "linalg", "(X @ A) @ B: encrypted 128x768, 768x8 and 8x768 (LoRA adapter, rank 8, "
     "A and B prepared once for the activation's layout)"),
    ("ccmm_64x64x64", "linalg", "X @ Y: encrypted 64x64 times encrypted 64x64"),
]
LINALG_OP_NAMES = [spec[0] for spec in LINALG_OP_SPECS]


def _bits(got: np.ndarray, want: np.ndarray) -> float:
    err = float(np.max(np.abs(np.asarray(got) - np.asarray(want))))
    return float("inf") if err == 0 else -math.log2(err)


def _note(costs: List[Any], bits: float, level_in: int, level_out: int) -> str:
    rot = sum(c.rotations for c in costs)
    hoisted = sum(c.hoisted for c in costs)
    ks = sum(c.key_switches for c in costs)
    ptm = sum(c.plain_mults for c in costs)
    ctm = sum(c.ct_mults for c in costs)
    steps = sorted({s for c in costs for s in c.rotation_steps})
    methods = "+".join(f"{c.op}[{c.method}]" for c in costs)
    return (f"{methods}: {rot} rotations ({hoisted} hoisted), {ks} key switches, {ptm} pt-mults, {ctm} ct-mults, "
            f"levels {level_in}->{level_out} ({level_in - level_out} consumed), {len(steps)} rotation keys, "
            f"{bits:.1f} bits")


class LinalgCase:
    """Inputs, keys and the timed product of one linalg op on a hetensor context."""

    def __init__(self, ctx, op: str, seed: int = 5) -> None:
        import hetensor as ht
        from hetensor import linalg as la

        self.ctx, self.op, self.la = ctx, op, la
        # Rotation keys take 72 MiB each at N = 2^16: chain the long loops there (keys for step
        # differences only) unless HETENSOR_BENCH_KEYS=fast asks for one key per hoisted step.
        policy = os.environ.get("HETENSOR_BENCH_KEYS", "few" if ctx.ring_degree >= 1 << 16 else "fast")
        la.set_key_policy(ctx, policy)
        self.policy = policy
        rng = np.random.default_rng(seed)
        S = ctx.slots
        steps: set = set()
        self.costs: List[Any] = []
        if op == "cpmm_128x768x768":
            X = rng.uniform(-1, 1, (128, 768))
            W = rng.uniform(-1, 1, (768, 768)) / math.sqrt(768)
            self.x = ctx.encrypt(X, layout="matrix")
            self.w = ht.PlainMatrix(ctx, W, name="W")
            steps.update(ctx.rotation_steps_for("cpmm", X.shape, W.shape, layouts=[self.x.layout, None]))
            self.ref = X @ W
            self.run = lambda: self._track(self.x @ self.w)
        elif op == "ccmm_128x64x128":
            Q = rng.uniform(-1, 1, (128, 64)) / 4
            K = rng.uniform(-1, 1, (128, 64)) / 4
            self.q, self.k = ctx.encrypt(Q, layout="matrix"), ctx.encrypt(K, layout="matrix")
            steps.update(ctx.rotation_steps_for("ccmm", Q.shape, (64, 128), layouts=[self.q.layout, self.k.T.layout]))
            self.ref = Q @ K.T
            self.run = lambda: self._track(self.q @ self.k.T)
        elif op == "lora_128x768x8x768":
            m, n, r = 128, 768, 8
            X = rng.uniform(-1, 1, (m, n))
            A = rng.uniform(-1, 1, (n, r)) / math.sqrt(n)
            B = rng.uniform(-1, 1, (r, n)) / math.sqrt(r)
            self.x = ctx.encrypt(X, layout="matrix")
            # The adapters are encrypted once in the layouts that make their products cheapest
            # (for A: A^T at the activation's super-slot height, used by broadcast diagonals).
            self.a = ctx.encrypt(A, layout=la.suggest_layout(ctx, self.x.layout, A.shape))
            steps.update(ctx.rotation_steps_for("ccmm", X.shape, A.shape, layouts=[self.x.layout, self.a.layout]))
            best = la._ccmm_candidates(ctx, self.x.layout, self.a.layout, 1)[0]
            h_layout = best["setup"]["out"].replace(shape=(m, r))
            self.b = ctx.encrypt(B, layout=la.suggest_layout(ctx, h_layout, B.shape))
            steps.update(ctx.rotation_steps_for("ccmm", (m, r), B.shape, layouts=[h_layout, self.b.layout]))
            self.ref = X @ A @ B
            have = set(ctx.rotation_steps)
            ctx.generate_rotation_keys(sorted(steps - have))
            # The adapters are prepared once for the activation's layout (like a PlainMatrix is
            # encoded once): broadcast diagonals of A, the extended skew of B. Not timed; its
            # cost goes into the note.
            self.a_prep = la.prepare(self.a, self.x.layout)
            self.b_prep = la.prepare(self.b, h_layout)
            self.prep_costs = [self.a_prep.cost, self.b_prep.cost]
            self.run = lambda: self._track(self._track(self.x @ self.a_prep) @ self.b_prep)
        elif op == "ccmm_64x64x64":
            X = rng.uniform(-1, 1, (64, 64)) / 4
            Y = rng.uniform(-1, 1, (64, 64)) / 4
            self.x, self.y = ctx.encrypt(X, layout="matrix"), ctx.encrypt(Y, layout="matrix")
            steps.update(ctx.rotation_steps_for("ccmm", X.shape, Y.shape))
            self.ref = X @ Y
            self.run = lambda: self._track(self.x @ self.y)
        else:
            raise ValueError(f"unknown linalg op {op!r}")
        have = set(ctx.rotation_steps)
        need = sorted(steps - have)
        if need:
            ctx.generate_rotation_keys(need)
        self.keys = len(steps)

    @staticmethod
    def _pt_bytes(ctx, count: int) -> int:
        return int(count * (ctx.max_level + 1) * ctx.ring_degree * 8)

    def _track(self, out):
        self.costs.append(self.la.last_cost())
        return out

    def first(self) -> str:
        """Runs once (encodes what is cached), checks the result, returns the note."""
        level_in = self._level_in()
        self.costs = []
        out = self.run()
        bits = _bits(self.ctx.decrypt(out), self.ref)
        note = _note(self.costs, bits, level_in, int(out.level))
        self.bits = bits
        note += f", key policy {self.policy}"
        if getattr(self, "prep_costs", None):
            pc = self.prep_costs
            note += (f"; adapters prepared once (not timed): {sum(c.seconds for c in pc):.1f} s, "
                     f"{sum(c.rotations for c in pc)} rotations, {sum(c.plain_mults for c in pc)} pt-mults, "
                     f"{max(c.levels for c in pc)} level on A and B")
        return note

    def _level_in(self) -> int:
        for name in ("x", "q"):
            if hasattr(self, name):
                return int(getattr(self, name).level)
        return int(self.ctx.max_level)


def hetensor_bench(session, op: str):
    """The Bench of a linalg op for hetensor's session (see hetensor_ops)."""
    from .timing import Bench

    case = LinalgCase(session.ctx, op)
    note = case.first()  # warm-up: encodes the weight / maps, and gives the counts and precision
    return Bench(run=lambda _: case.run(), note=note)


__all__ = ["LINALG_OP_NAMES", "LINALG_OP_SPECS", "LinalgCase", "hetensor_bench"]
