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
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

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


#: Ops whose right operand is held transposed (attention scores: Q @ K^T with K encrypted as is).
ATTENTION_OPS = {"ccmm_128x64x128"}


@dataclass
class LinalgInputs:
    """The float64 operands and reference of a linalg op (the same for hetensor and every peer).

    ``kind`` is cpmm (x, w plaintext), ccmm (x, y both encrypted; y is the logical n x p right
    operand, K^T for attention) or lora (x, a, b all encrypted).
    """

    kind: str
    mats: Dict[str, np.ndarray]
    ref: np.ndarray


def linalg_inputs(op: str, seed: int = 5) -> LinalgInputs:
    """Operands of ``op``: a catalogue name or any ``cpmm_MxNxP``, ``ccmm_MxNxP``, ``lora_MxNxRxN``.

    Values are uniform in [-1, 1], scaled so products stay near [-1, 1]; the catalogue ops draw
    exactly what LinalgCase encrypts.
    """
    match = re.fullmatch(r"(cpmm|ccmm|lora)_(\d+)x(\d+)x(\d+)(?:x(\d+))?", op)
    if not match or (match.group(1) == "lora") != (match.group(5) is not None):
        raise ValueError(f"unknown linalg op {op!r}")
    kind = match.group(1)
    m, n, p = (int(match.group(i)) for i in (2, 3, 4))
    rng = np.random.default_rng(seed)
    if kind == "cpmm":
        x = rng.uniform(-1, 1, (m, n))
        w = rng.uniform(-1, 1, (n, p)) / math.sqrt(n)
        return LinalgInputs(kind, {"x": x, "w": w}, x @ w)
    if kind == "ccmm":
        x = rng.uniform(-1, 1, (m, n)) / 4
        # Attention draws K (p x n) and multiplies by K^T; a plain product draws Y (n x p).
        y = (rng.uniform(-1, 1, (p, n)) / 4).T if op in ATTENTION_OPS else rng.uniform(-1, 1, (n, p)) / 4
        return LinalgInputs(kind, {"x": x, "y": y}, x @ y)
    r, n2 = p, int(match.group(5))
    x = rng.uniform(-1, 1, (m, n))
    a = rng.uniform(-1, 1, (n, r)) / math.sqrt(n)
    b = rng.uniform(-1, 1, (r, n2)) / math.sqrt(r)
    return LinalgInputs(kind, {"x": x, "a": a, "b": b}, x @ a @ b)


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


class Footprint:
    """Resident memory of one op's setup (keys, operands) and peak, above the process before it.

    The bench's per-op peak covers the samples only, and includes whatever else the process
    holds (other libraries' sessions); this isolates what the op itself needs.
    """

    def __init__(self) -> None:
        from .memory import current_rss_bytes

        self._rss = current_rss_bytes
        self.start = current_rss_bytes()
        self.setup = self.start
        self.peak: Optional[int] = None

    def setup_done(self) -> None:
        self.setup = self._rss()

    def samples_done(self) -> None:
        """Call at the end of the samples (Bench.finalize): reads the high-water mark since they began."""
        from .memory import _status_kib

        hwm = _status_kib("VmHWM")
        self.peak = max(hwm * 1024, self.setup) if hwm is not None else None

    def note(self) -> str:
        gb = 1e9
        text = f"memory: {(self.setup - self.start) / gb:.1f} GB resident for keys and operands"
        if self.peak is not None:
            text += f", peak {(self.peak - self.start) / gb:.1f} GB above the process before setup"
        return text


def case_bench(case: Any, mem: Footprint, divisor: float = 1) -> Any:
    """The Bench of a peer's linalg ``case`` (``run``, ``check`` after each sample, ``note()``) set up
    since ``mem`` began: after the samples its note is the case's note and ``mem``'s footprint."""
    from .timing import Bench

    bench = Bench(run=case.run, cleanup=case.check, note=case.note(), divisor=divisor)  # type: ignore[arg-type]

    def finalize() -> None:
        mem.samples_done()
        bench.note = f"{case.note()}; {mem.note()}"
        bench.finalize = None  # no cycle: the keys and operands go with the Bench

    bench.finalize = finalize
    return bench


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
        inp = linalg_inputs(op, seed)
        steps: set = set()
        self.costs: List[Any] = []
        if op == "cpmm_128x768x768" or inp.kind == "cpmm":
            X, W = inp.mats["x"], inp.mats["w"]
            self.x = ctx.encrypt(X, layout="matrix")
            self._lower()
            # HETENSOR_BENCH_CACHE=0: diagonals encoded at every product (streamed) instead of once
            cache = os.environ.get("HETENSOR_BENCH_CACHE", "1") != "0"
            self.w = ht.PlainMatrix(ctx, W, name="W", cache="auto" if cache else False)
            steps.update(ctx.rotation_steps_for("cpmm", X.shape, W.shape, layouts=[self.x.layout, None],
                                                level=int(self.x.level)))
            self.ref = X @ W
            self.run = lambda: self._track(self.x @ self.w)
        elif op == "ccmm_128x64x128":
            Q, K = inp.mats["x"], inp.mats["y"].T
            self.q, self.k = ctx.encrypt(Q, layout="matrix"), ctx.encrypt(K, layout="matrix")
            steps.update(ctx.rotation_steps_for("ccmm", Q.shape, (64, 128), layouts=[self.q.layout, self.k.T.layout]))
            self.ref = Q @ K.T
            self.run = lambda: self._track(self.q @ self.k.T)
        elif op == "lora_128x768x8x768":
            m, n, r = 128, 768, 8
            X, A, B = inp.mats["x"], inp.mats["a"], inp.mats["b"]
            self.x = ctx.encrypt(X, layout="matrix")
            # The adapters are encrypted once in the layouts that make their products cheapest:
            # A^T at the activation's super-slot height (broadcast diagonals of X @ A), B split by
            # rows at the same height (the repeat route of (X A) @ B).
            la_a = la.suggest_layout(ctx, self.x.layout, A.shape, method="diag")
            self.a = ctx.encrypt(A, layout=la_a)
            best = la._ccmm_candidates(ctx, self.x.layout, la_a, 1, "diag")[0]
            h_layout = best["setup"]["out"].replace(shape=(m, r))
            self.b = ctx.encrypt(B, layout=la.suggest_layout(ctx, h_layout, B.shape, method="repeat"))
            self._lower()
            self.ref = X @ A @ B
            # The adapters are prepared once for the activation's layout (like a PlainMatrix is
            # encoded once): broadcast diagonals of A, B's rows split and repeated down the lanes.
            # Not timed; its cost goes into the note. Keys: made for exactly what lora uses.
            lvl = int(self.x.level)
            ctx.generate_rotation_keys(ctx.rotation_steps_for(
                "lora", X.shape, A.shape, B.shape, layouts=[self.x.layout, self.a.layout, self.b.layout],
                level=[lvl, int(self.a.level), int(self.b.level)]))
            self.a_prep, self.b_prep = la.prepare_lora(self.a, self.b, self.x)
            self.prep_costs = [self.a_prep.cost, self.b_prep.cost]
            self.run = lambda: self._track(la.lora(self.x, self.a_prep, self.b_prep))
        elif op == "ccmm_64x64x64":
            X, Y = inp.mats["x"], inp.mats["y"]
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

    def _lower(self) -> None:
        """HETENSOR_BENCH_LEVEL=L: the operands are brought down to level L first (e.g. 9, the
        level of a bootstrapped ciphertext at n16-boot) so the products run where a model runs them."""
        level = os.environ.get("HETENSOR_BENCH_LEVEL")
        if not level:
            return
        for name in ("x", "a", "b"):
            t = getattr(self, name, None)
            if t is not None and int(t.level) > int(level):
                setattr(self, name, t.level_to(int(level)))

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
    """The Bench of a linalg op for hetensor's session (see hetensor_ops).

    The op gets a context of its own, so its rotation keys (up to 9 GB at n16) and cached
    diagonals are freed with it, before the peers run theirs in the same process.
    """
    import hetensor as ht
    from hetensor import linalg as la

    from .timing import Bench

    mem = Footprint()
    ctx = ht.Context.from_preset(session.spec.preset)
    case = LinalgCase(ctx, op)
    note = case.first()  # warm-up: encodes the weight / maps, and gives the counts and precision
    mem.setup_done()
    bench = Bench(run=lambda _: case.run(), note=note)

    def finalize() -> None:
        mem.samples_done()
        bench.note = f"{note}; {mem.note()}"
        la.clear_cache(ctx)  # cached weights refer back to the context
        case.__dict__.clear()  # case.run refers back to the case: without this the keys wait for gc
        bench.finalize = None  # no cycle: the context goes with the Bench

    bench.finalize = finalize
    return bench


__all__ = ["Footprint", "LINALG_OP_NAMES", "LINALG_OP_SPECS", "LinalgCase", "LinalgInputs", "case_bench",
           "hetensor_bench", "linalg_inputs"]
