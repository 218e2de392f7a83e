"""CKKS bootstrapping: ModRaise -> CoeffToSlot -> EvalMod -> SlotToCoeff.

The circuit (Cheon-Han-Kim-Kim-Song 2018, with the Chen-Chillotti-Song
factorised DFT and the Han-Ki cosine/double-angle EvalMod) is planned here:
the DFT factors encoded as diagonal linear transforms, the Chebyshev
polynomials of EvalMod, the scales each step reads its input at and the error
model. The plan of each order goes into a ``_core.BootExecutor``
(cpp/boot/executor), which runs a whole bootstrap (one ciphertext, a
complex-packed pair, or a list) in one C++ call, on host ciphertexts or on
device-resident ones over their backend.

Slots and coefficients. With N = 2n, the slots of a polynomial t are
z = V (t_lo + i t_hi) / scale with V[j, k] = zeta^(5^j k). V factors as
S_m ... S_1 BR (BR the bit reversal, each S_k three diagonals), so
CoeffToSlot applies S_1^-1 ... S_m^-1 (the output is bit-reversed, which
EvalMod does not mind) and SlotToCoeff applies S_m ... S_1, each grouped into
a few levels.

Scales. Nothing is multiplied by tiny constants: after ModRaise the same
polynomial is read at scale 2 K q_0 (so the slots are t / (2 K q_0)), and
after EvalMod at scale S * 2 pi s_0 / q_0 (so the slots are m / s_0 again).
CoeffToSlot and EvalMod use 60-bit primes so that EvalMod runs at scale ~2^60
and its error, amplified by q_0 / s_0 ~ 2^20, stays near 2^-28; SlotToCoeff
and the computation levels below use 40-bit primes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import _core, memory, ranges


@dataclass(frozen=True)
class BootParams:
    """Shape of the bootstrapping circuit.

    k_bound: |I| <= K for t = m + q_0 I (set by the secret's Hamming weight).
    double_angles: r, the cosine is evaluated at angle / 2^r, then doubled r times.
    cts_levels, stc_levels: levels of CoeffToSlot and SlotToCoeff.
    cos_degree: degree of the Chebyshev approximation (None: smallest 2^k - 1 that
    meets the error target).
    encapsulation_h: Hamming weight of the sparse secret the ciphertext is
    switched to around ModRaise (None: ModRaise under the context's own secret,
    which must then be sparse).
    message_ratio_bits: log2(q_0 / (scale * |m|max)) at ModRaise. The input is
    first multiplied by the integer 2^(log2(q_0 / s_0) - message_ratio_bits)
    (free: no level). A small ratio shrinks every error after EvalMod (they are
    amplified by q_0 / scale) but lets the sine bend large coefficients: the
    cubic error (2 pi m / ratio)^2 / 6 matters for inputs whose energy sits in
    few coefficients (constants), unless arcsine_degree corrects it. None: keep
    the context's q_0 / s_0.
    arcsine_degree: 0 (none), 3 or 5: evaluate arcsin on the sine's output
    (Taylor terms, 2 or 3 more levels), which removes the sine's bend.
    cts_headroom_bits: CoeffToSlot's values are 2^h larger than their final size
    until its last level, so the rounding noise of the earlier rescales is 2^h
    smaller next to them (the last one lands on the canonical scale).
    """

    k_bound: int = 16
    double_angles: int = 3
    cts_levels: int = 3
    stc_levels: int = 3
    cos_degree: Optional[int] = None
    encapsulation_h: Optional[int] = 32
    message_ratio_bits: Optional[int] = None
    arcsine_degree: int = 0
    cts_headroom_bits: int = 0

    def __post_init__(self) -> None:
        if self.arcsine_degree not in (0, 3, 5):
            raise ValueError(f"arcsine_degree must be 0, 3 or 5, got {self.arcsine_degree}")
        if not 0 <= self.cts_headroom_bits <= 10:
            raise ValueError(f"cts_headroom_bits must be in [0, 10], got {self.cts_headroom_bits}")
        if self.message_ratio_bits is not None and not 4 <= self.message_ratio_bits <= 30:
            raise ValueError(f"message_ratio_bits must be in [4, 30], got {self.message_ratio_bits}")

    def arcsine_levels(self) -> int:
        return {0: 0, 3: 2, 5: 3}[self.arcsine_degree]

    def eval_mod_levels(self, degree: int) -> int:
        return _core.chebyshev_depth(degree) + self.double_angles + self.arcsine_levels()


def boot_level_count(params: BootParams, log_n: int) -> int:
    """Levels one bootstrap consumes (CtS + EvalMod + StC)."""
    return params.cts_levels + params.eval_mod_levels(choose_cos_degree(params)) + params.stc_levels


def choose_cos_degree(params: BootParams) -> int:
    if params.cos_degree is not None:
        return params.cos_degree
    g = _cos_function(params)
    xs = np.cos(np.linspace(0, np.pi, 4001))
    for d in (15, 31, 63, 127, 255):
        p = _core.chebyshev_interpolate(g, -1.0, 1.0, d)
        err = max(abs(p.eval(float(x)) - g(float(x))) for x in xs[::4])
        if err * 4.0**params.double_angles < 2.0**-34:
            return d
    return 255


def _cos_function(params: BootParams):
    k, r = params.k_bound, params.double_angles
    return lambda x: math.cos((2 * math.pi * k * x - math.pi / 2) / 2**r)


def _even_shift_and_span(params: BootParams) -> Tuple[float, float]:
    """stc_first's EvalMod input x in [-1, 1] (x = t / (K q0)) becomes
    u = (x - c) / B in [-1, 1]: c = 1 / (4K) turns the cosine into the sine."""
    c = 1.0 / (4 * params.k_bound)
    return c, 1.0 + c


def _even_cos_function(params: BootParams):
    """The cosine of stc_first's EvalMod as a function of z = T_2(u) = 2u^2 - 1.

    After r double angles cos(2 pi K B u / 2^r) is cos(2 pi K (x - c)) =
    sin(2 pi K x). The cosine is even in u, so it is a polynomial of degree d in
    z (2d in u): d's key switches plus one square, 11 instead of 15 for the
    degree-62 cosine, same depth 1 + ceil(log2(d + 1)). Noise in z near u = 0
    weighs (a / 2)^2 instead of a (a = 2 pi K B / 2^r): 1.5 bits, which
    stc_first's precision affords and the classic order's does not."""
    k, r = params.k_bound, params.double_angles
    _, span = _even_shift_and_span(params)
    w = 2 * math.pi * k * span / 2**r
    return lambda z: math.cos(w * math.sqrt(max(0.0, (z + 1) / 2)))


def _even_cos_poly(params: BootParams, depth: int):
    """The even form of degree 2^(depth - 1) - 1 in z, if it meets the cosine's
    error target (else None: stc_first then uses the classic polynomial)."""
    d = 2 ** (depth - 1) - 1
    if d < 7:
        return None
    g = _even_cos_function(params)
    p = _core.chebyshev_interpolate(g, -1.0, 1.0, d)
    zs = np.cos(np.linspace(0, np.pi, 1001))
    err = max(abs(p.eval(float(z)) - g(float(z))) for z in zs)
    return p if err * 4.0**params.double_angles < 2.0**-34 else None


#: K_in, the largest |x| bootstrap() accepts (checked against the tracked
#: bound). Its error grows with the bound: about 2^-25 for |x| <= 1, 2^-20 at
#: 2, 2^-15 at 4, 2^-10 at 8 (the sine's residual bend after the arcsine,
#: ~|x|^5; docs/BOOTSTRAP.md); beyond 8 the modular reduction soon wraps.
MAX_INPUT_BOUND = 8.0

#: The error bound added to a bootstrap's output bound for |x| <= 1 (measured:
#: 2^-22 at n16-boot, 2^-25 at toy-boot-insecure; 2^-18 leaves a margin).
NOISE_BOUND = 2.0 ** -18

#: bootstrap(..., stc_first=True) runs at a message ratio this many bits larger.
EARLY_RATIO_EXTRA = 1

#: The core's buffer cache is capped at this while a bootstrap runs
#: (hetensor.memory.capped). The cache no longer adds to the peak: a request
#: that no cached buffer fits is built from the cached buffers' pages before
#: any fresh page is mapped. A cap of 128 MiB (the peak's guard before that)
#: sent most buffers back to the system, and their fresh pages cost 2.5 s of
#: kernel zeroing per n16-boot bootstrap; at 1 GiB the working set stays
#: mapped from one bootstrap to the next (peak RSS, keygen + three
#: bootstraps: 7.64 GB).
BOOT_CACHE_LIMIT = 1 << 30

#: The two orders of the circuit: "stc_first" (SlotToCoeff on the input's last
#: levels, then ModRaise, CoeffToSlot, EvalMod; the default) and "classic"
#: (ModRaise at level 0, CoeffToSlot, EvalMod, SlotToCoeff).
ORDERS = ("stc_first", "classic")


@dataclass(frozen=True)
class BootstrapContract:
    """What a context's bootstrap accepts and returns, for planners to read.

    order: "stc_first" or "classic" (:data:`ORDERS`).
    input_level: the lowest level a ciphertext may be bootstrapped from (3 for
    stc_first: SlotToCoeff runs on the input's last 3 levels; 0 for classic).
    A ciphertext above it is brought down first (no precision lost).
    output_level: the level the result comes back at (the context's
    ``fresh_level``, where encryptions start too).
    max_input_bound: K_in, the largest |x| accepted (by the tracked bound).
    """

    order: str
    input_level: int
    output_level: int
    max_input_bound: float

    @property
    def levels(self) -> int:
        """Levels a computation can use between two bootstraps: output_level - input_level."""
        return self.output_level - self.input_level

    @property
    def stc_first(self) -> bool:
        """Whether the order is SlotToCoeff first."""
        return self.order == "stc_first"


#: Bootstrapping parameters of the presets that support it.
BOOT_PRESETS: Dict[str, BootParams] = {
    "toy-boot-insecure": BootParams(k_bound=16, double_angles=2, cts_levels=3, stc_levels=3,
                                    message_ratio_bits=8, arcsine_degree=3),
    "n16-boot": BootParams(k_bound=16, double_angles=2, cts_levels=3, stc_levels=3,
                           message_ratio_bits=8, arcsine_degree=3),
    "n12-boot9-insecure": BootParams(k_bound=16, double_angles=2, cts_levels=3, stc_levels=3,
                                     message_ratio_bits=8, arcsine_degree=3),
}


# -- the factorised special DFT ---------------------------------------------------

Diagonals = Dict[int, np.ndarray]


def _stage(n: int, length: int, inverse: bool) -> Diagonals:
    """The butterfly stage of block `length` (or its inverse) as diagonals."""
    m = 4 * n
    h = length // 2
    pos = np.arange(n) % length
    j = np.where(pos < h, pos, pos - h)
    rot = np.array([pow(5, int(t), 4 * length) for t in range(h)])
    xi = np.exp(2j * np.pi * rot[j] * (m // (4 * length)) / m)
    upper = pos < h
    d0 = np.zeros(n, dtype=complex)
    dp = np.zeros(n, dtype=complex)
    dm = np.zeros(n, dtype=complex)
    if not inverse:  # [[1, xi], [1, -xi]]
        d0[upper], dp[upper] = 1, xi[upper]
        dm[~upper], d0[~upper] = 1, -xi[~upper]
    else:            # (1/2) [[1, 1], [1/xi, -1/xi]]
        d0[upper], dp[upper] = 0.5, 0.5
        dm[~upper], d0[~upper] = 0.5 / xi[~upper], -0.5 / xi[~upper]
    out: Diagonals = {0: d0}
    out[h % n] = out.get(h % n, 0) + dp
    out[(n - h) % n] = out.get((n - h) % n, 0) + dm
    return {k: v for k, v in out.items() if np.any(np.abs(v) > 0)}


def _compose(a: Diagonals, b: Diagonals, n: int) -> Diagonals:
    """Diagonals of A @ B (B applied first): (AB)_{d+e}[i] = a_d[i] b_e[i+d]."""
    out: Diagonals = {}
    for d, av in a.items():
        for e, bv in b.items():
            k = (d + e) % n
            out[k] = out.get(k, 0) + av * np.roll(bv, -d)
    return {k: v for k, v in out.items() if np.max(np.abs(v)) > 1e-14}


def _groups(count: int, parts: int) -> List[int]:
    base, extra = divmod(count, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def dft_factors(n: int, parts: int, inverse: bool) -> List[Diagonals]:
    """CoeffToSlot (inverse=True: S_1^-1 ... S_m^-1) or SlotToCoeff (S_m ... S_1)
    as `parts` matrices, listed in the order they are applied."""
    lengths = [2 ** (k + 1) for k in range(int(math.log2(n)))]  # S_1 .. S_m
    if not 1 <= parts <= len(lengths):
        raise ValueError(f"the DFT of {n} slots has {len(lengths)} stages; it cannot be split in {parts} levels")
    stages = [_stage(n, ln, inverse) for ln in lengths]
    order = stages[::-1] if inverse else stages  # application order
    mats: List[Diagonals] = []
    start = 0
    for size in _groups(len(order), parts):
        acc: Optional[Diagonals] = None
        for st in order[start:start + size]:
            acc = st if acc is None else _compose(st, acc, n)
        mats.append(acc)
        start += size
    return mats


# -- the bootstrapper ----------------------------------------------------------------

class Bootstrapper:
    """Precomputed transforms and polynomial for one context; see module doc.

    ``order`` ("stc_first", the default, or "classic") is the order a bootstrap
    runs in when its caller does not choose (:attr:`contract`); the other order
    stays available per call, its SlotToCoeff encoded on its first use (the
    classic one: 1.5 GB more at n16-boot).
    """

    def __init__(self, ctx, params: BootParams, order: str = "stc_first") -> None:
        if order not in ORDERS:
            raise ValueError(f"bootstrap order must be one of {', '.join(ORDERS)}, got {order!r}")
        if order == "stc_first" and not params.arcsine_degree:
            raise ValueError("the stc_first order needs an arcsine (arcsine_degree 3 or 5) to land the output's "
                             "scale; use order='classic' for these parameters")
        self.ctx = ctx
        self.params = params
        self.order = order
        eng = ctx._engine
        n = ctx.slots
        top = ctx.max_level
        self.degree = choose_cos_degree(params)
        self.poly = _core.chebyshev_interpolate(_cos_function(params), -1.0, 1.0, self.degree)
        self.even_poly = _even_cos_poly(params, _core.chebyshev_depth(self.degree))
        em = params.eval_mod_levels(self.degree)
        self.levels = params.cts_levels + em + params.stc_levels
        self.output_level = top - self.levels
        if self.output_level < 0:
            raise ValueError(
                f"bootstrapping needs {self.levels} levels but the chain has {top}; use a boot preset")
        q0 = float(eng.q[0])
        s0 = ctx.scale_at(0)
        # Integer pre-multiplier that sets the message ratio q0 / (c s0).
        self.premultiplier = 1
        if params.message_ratio_bits is not None:
            shift = int(math.floor(math.log2(q0 / s0))) - params.message_ratio_bits
            if shift < 0:
                raise ValueError(f"message_ratio_bits={params.message_ratio_bits} exceeds log2(q0 / scale) = "
                                 f"{math.log2(q0 / s0):.1f}; lower it or use a larger q0")
            self.premultiplier = 1 << shift
        s_in = s0 * self.premultiplier
        self.message_ratio = q0 / s_in
        self.input_scale = 2.0 * params.k_bound * q0
        # CoeffToSlot reads the input 2^h too low, so its values (and the raw
        # polynomial) stay 2^h above canonical; EvalMod reads them back at 2^h more.
        self.headroom = float(2 ** params.cts_headroom_bits)
        self.cts = self._encode_chain(dft_factors(n, params.cts_levels, inverse=True), top,
                                      self.input_scale / self.headroom, last_headroom=self.headroom)
        level = top - params.cts_levels
        self.eval_mod_level = level
        stc_level = level - em
        # EvalMod output: sin(2 pi t / q0) ~ 2 pi m / q0. Its scale: canonical after
        # the polynomial, then s^2 / q_l per double angle (the last one crosses
        # into the 40-bit region, so it is not that level's canonical scale);
        # an arcsine lands canonical again.
        cos_level = level - _core.chebyshev_depth(self.degree)
        scale = ctx.scale_at(cos_level)
        for lv in range(cos_level, cos_level - params.double_angles, -1):
            scale = scale * scale / float(eng.q[lv])
            if abs(scale / ctx.scale_at(lv - 1) - 1) < 1e-6:
                scale = ctx.scale_at(lv - 1)
        if params.arcsine_degree:
            # Land the arcsine at the EvalMod region's scale, not the smaller
            # canonical one of the StC region: the values (~2 pi / ratio) are
            # small and need the raw headroom.
            scale = ctx.scale_at(stc_level + 1)
        self.eval_mod_scale = scale
        # Read at S * 2 pi c s0 / q0 the slots are m / s0 again.
        self.stc_input_scale = scale * 2 * math.pi * s_in / q0
        self.stc_level = stc_level
        self._stc: Optional[list] = None  # the classic order's SlotToCoeff (property stc)
        self._executors: Dict[bool, object] = {}  # stc_first -> _core.BootExecutor (executor())
        # SlotToCoeff first (bootstrap(..., stc_first=True)): the same matrices at
        # the bottom of the chain, before ModRaise, and the arcsine landing
        # where the slots read canonically at stc_level.
        self.early_output_level = stc_level
        self._stc_low: Optional[list] = None
        # Its coefficients are the values themselves (no spreading over N), so
        # every one meets the sine's bend: a larger ratio (2^EARLY_RATIO_EXTRA
        # more) keeps it small, and EvalMod's noise is not amplified by
        # SlotToCoeff any more, so the ratio's amplification is affordable.
        self.early_premultiplier = max(1, self.premultiplier >> EARLY_RATIO_EXTRA)
        s_early = s0 * self.early_premultiplier
        self.early_message_ratio = q0 / s_early
        self.early_eval_mod_scale = ctx.scale_at(stc_level) * q0 / (2 * math.pi * s_early)
        taylor = [0.0, 1.0, 0.0, 1.0 / 6.0, 0.0, 3.0 / 40.0][: params.arcsine_degree + 1]
        self.arcsine_poly = _core.chebyshev_from_power(taylor)
        # The half variant (complex-packed bootstraps) returns z / 2, so that
        # z + conj(z) is Re z with no extra level: the 1/2 rides on the last step.
        self.arcsine_half = _core.chebyshev_from_power([c / 2 for c in taylor])
        # Only the transforms of the context's order are encoded now: at
        # n16-boot the classic SlotToCoeff's diagonals over Q*P are ~1 GiB.
        self.executor(order == "stc_first")

    @property
    def stc(self) -> list:
        """The classic order's SlotToCoeff, from stc_level down (encoded on first use)."""
        if self._stc is None:
            self._stc = self._encode_chain(dft_factors(self.ctx.slots, self.params.stc_levels, inverse=False),
                                           self.stc_level, self.stc_input_scale)
        return self._stc

    def executor(self, stc_first: bool):
        """The ``_core.BootExecutor`` of one order (its plan made, and its
        SlotToCoeff encoded, on first use)."""
        ex = self._executors.get(stc_first)
        if ex is None:
            ex = self._executors[stc_first] = _core.BootExecutor(self._plan(stc_first))
        return ex

    def _plan(self, stc_first: bool):
        """What the executor of one order runs (see cpp/boot/executor.hpp)."""
        p = _core.BootPlan()
        p.stc_first = stc_first
        p.stc_levels = self.params.stc_levels
        p.double_angles = self.params.double_angles
        p.arcsine_degree = self.params.arcsine_degree
        p.encapsulation = bool(self.params.encapsulation_h)
        p.input_scale = self.input_scale
        p.headroom = self.headroom
        p.cts = self.cts
        p.stc = self.stc_low() if stc_first else self.stc
        p.cos_poly = self.poly
        p.even_poly = self.even_poly
        p.even_shift, p.even_span = _even_shift_and_span(self.params)
        p.arcsine, p.arcsine_half = self.arcsine_poly, self.arcsine_half
        p.eval_mod_scale = self.early_eval_mod_scale if stc_first else self.eval_mod_scale
        p.stc_input_scale = self.stc_input_scale
        p.output_level = self.early_output_level if stc_first else self.output_level
        p.premultiplier = self.early_premultiplier if stc_first else self.premultiplier
        p.message_ratio = self.early_message_ratio if stc_first else self.message_ratio
        p.noise_bound = NOISE_BOUND
        return p

    def release_transforms(self) -> None:
        """Free the encoded transforms (GBs at n16-boot) and the executors that
        hold them; bootstrapping is unavailable afterwards (benchmarks that are
        done with it)."""
        self._executors.clear()
        self.cts, self._stc, self._stc_low = [], None, None

    @property
    def contract(self) -> BootstrapContract:
        """The level contract of :attr:`order` (what ``ctx.bootstrap`` does by default)."""
        return self.contract_of(self.order == "stc_first")

    def contract_of(self, stc_first: bool) -> BootstrapContract:
        if stc_first:
            return BootstrapContract("stc_first", self.params.stc_levels, self.early_output_level, MAX_INPUT_BOUND)
        return BootstrapContract("classic", 0, self.output_level, MAX_INPUT_BOUND)

    def resolve(self, stc_first: Optional[bool]) -> bool:
        """The order of one call: ``stc_first`` when given (True / False), else the context's."""
        if stc_first is None:
            return self.order == "stc_first"
        if not isinstance(stc_first, bool):
            raise TypeError(f"stc_first must be True, False or None (the context's order), got {stc_first!r}")
        return stc_first

    def _transforms(self, stc_first: Optional[bool] = None) -> list:
        """CoeffToSlot and the SlotToCoeff of one order (default: the context's)."""
        return list(self.cts) + (self.stc_low() if self.resolve(stc_first) else self.stc)

    @property
    def rotation_steps(self) -> List[int]:
        """Rotation steps of the context's order."""
        return sorted({int(s) for lt in self._transforms() for s in lt.rotation_steps()})

    def _encode_chain(self, mats: List[Diagonals], level: int, input_scale: float,
                      last_headroom: float = 1.0, extended: bool = True) -> list:
        """Transforms applied one after the other from `level` down, the first
        reading its input at `input_scale`, the others at canonical scales (the
        last at `last_headroom` times it when the values carry that headroom).
        extended=False: diagonals over Q only (see encode_linear_transform)."""
        out = []
        for k, mat in enumerate(mats):
            if k > 0 and k == len(mats) - 1:
                input_scale *= last_headroom
            out.append(_core.encode_linear_transform(self.ctx._engine, mat, level, 0, input_scale, extended))
            level -= 1
            input_scale = self.ctx.scale_at(level)
        return out

    def key_levels(self, stc_first: Optional[bool] = None) -> Dict[int, int]:
        """Rotation step -> the highest level its key switches run at, for one
        order (default: the context's).

        A transform's rotations run at its level, so CoeffToSlot's keys serve
        the top of the chain and SlotToCoeff's only the levels below EvalMod;
        a key made for level l holds the limbs of q_0..q_l and P only (a
        SlotToCoeff-only key at n16-boot: 3 digits x 18 limbs against 5 x 31).
        """
        # In the stc_first order SlotToCoeff rotates at levels 3..1, but its keys
        # are made for the computation levels above too (up to the output level,
        # as in the classic order): a computation between two bootstraps rotates
        # by the same small steps and finds the key in ctx.rotation_steps.
        if self.resolve(stc_first):
            placed = [(lt, int(lt.level)) for lt in self.cts] + [(lt, self.early_output_level)
                                                                 for lt in self.stc_low()]
        else:
            placed = [(lt, int(lt.level)) for lt in self.cts + self.stc]
        levels: Dict[int, int] = {}
        for lt, top in placed:
            for s in lt.rotation_steps():
                levels[int(s)] = max(levels.get(int(s), -1), top)
        return levels

    def generate_keys(self, progress: bool = False) -> None:
        """Rotation keys of the transforms of the context's order (each for the
        levels it runs at, see :meth:`key_levels`), the conjugation key (for the
        levels from the end of CoeffToSlot down) and the encapsulation keys
        (slow at large N)."""
        eng = self.ctx._engine
        levels = self.key_levels()
        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=len(levels) + 1, desc="bootstrapping keys", unit="key")
            except ImportError:
                bar = None
        for s in sorted(levels):
            eng.generate_rotation_keys([s], levels[s])  # an existing key serving the level is kept
            if bar is not None:
                bar.update(1)
        eng.generate_conjugation_key(self.eval_mod_level)
        if self.params.encapsulation_h:
            _core.generate_encapsulation_keys(eng, self.params.encapsulation_h)
        if bar is not None:
            bar.update(1)
            bar.close()

    def error_bound(self, bound: float, stc_first: Optional[bool] = None) -> float:
        """An upper estimate of the bootstrap's error on values with |x| <= bound
        in one order (default: the context's): the noise (NOISE_BOUND, per unit
        of max(bound, 1)) plus the sine's residual bend on a coefficient holding
        the whole message (u = bound / ratio, the ratio of that order):
        (2 pi u)^2 / 6 bare, 3 (2 pi u)^4 / 40 after the arcsine, with a margin.
        Measured against it in tests/test_boot_chain.py and
        tests/test_boot_stc_first.py."""
        ratio = self.early_message_ratio if self.resolve(stc_first) else self.message_ratio
        return float(_core.boot_error_bound(float(bound), ratio, self.params.arcsine_degree, NOISE_BOUND))

    def check_input(self, bound: float, what: str = "the values") -> None:
        """The contract: |x| <= MAX_INPUT_BOUND (by the tracked bound)."""
        if not float(bound) <= MAX_INPUT_BOUND:
            raise ValueError(
                f"cannot bootstrap: {what} may reach |x| = {float(bound):g} (tracked bound) but bootstrapping "
                f"accepts |x| <= {MAX_INPUT_BOUND:g} (its error is about 2^-25 for |x| <= 1 and grows like "
                f"|x|^5 beyond; the message ratio is 2^{math.log2(self.message_ratio):.0f}); multiply by a "
                f"constant below 1 first (or normalise earlier)")

    def stc_low(self) -> list:
        """SlotToCoeff's transforms encoded from level stc_levels down to 0, over
        Q only: at levels 3..1 the special primes would be most of each
        diagonal (n16-boot: 0.76 GB over Q*P, 0.25 GB over Q)."""
        if self._stc_low is None:
            lv = self.params.stc_levels
            self._stc_low = self._encode_chain(dft_factors(self.ctx.slots, lv, inverse=False), lv,
                                               self.ctx.scale_at(lv), extended=False)
        return self._stc_low

    def _run(self, method: str, stc_first: bool, *args):
        """One call of the order's executor, under the boot cache cap."""
        with memory.capped(BOOT_CACHE_LIMIT):
            return getattr(self.executor(stc_first), method)(self.ctx._engine, *args)

    def level_error(self, level: int, what: str = "the ciphertext") -> str:
        """Why a ciphertext at ``level`` cannot be bootstrapped in the stc_first order."""
        lv = self.params.stc_levels
        return (f"cannot bootstrap in the stc_first order (SlotToCoeff first, the default order): {what} is at level "
                f"{level}, below the {lv} levels SlotToCoeff uses; bootstrap at level >= {lv} "
                f"(ctx.bootstrap_contract.input_level), or pass stc_first=False for the classic order (any "
                f"level, output {lv} levels lower, about 4 bits less precise at N = 2^16)")

    def _check_early(self, stc_first: bool) -> None:
        if stc_first and not self.params.arcsine_degree:
            raise ValueError("stc_first=True needs an arcsine (arcsine_degree 3 or 5) to land the output's scale")

    def bootstrap(self, ct, bound: Optional[float] = None, stc_first: Optional[bool] = None,
                  real_values: bool = False):
        """A fresh ciphertext (core object) holding the same values at the
        output level of its order (``stc_first``; None: the context's order,
        :attr:`contract`).

        ``bound``: what |x| is known not to exceed (default: the tracked
        ``ct.bound``); it must be <= MAX_INPUT_BOUND. The output's tracked
        bound is ``bound + error_bound(bound)``.

        ``stc_first``: SlotToCoeff runs first, on the input's own bottom levels
        (the input must be at level >= stc_levels), so it is cheap and EvalMod's
        error reaches the slots unamplified; the output is at
        early_output_level = output_level + stc_levels. ``real_values`` (with
        stc_first): the values are real, so one EvalMod suffices (their
        imaginary noise is dropped).
        """
        b = float(ct.bound) if bound is None else min(float(bound), float(ct.bound))
        stc_first = self.resolve(stc_first)
        self.check_input(b)
        self._check_early(stc_first)
        return self._run("bootstrap", stc_first, ct, b, bool(real_values))

    def bootstrap_pair(self, a, b, bound_a: Optional[float] = None, bound_b: Optional[float] = None,
                       stc_first: Optional[bool] = None):
        """Two real ciphertexts refreshed by one bootstrap of a + i b: returns
        (Re, Im) of the result, each at output_level (early_output_level with
        stc_first) with its own tracked bound. Their imaginary parts (noise for
        real data, however large) are dropped before packing, so neither reaches
        the other's values. Costs one bootstrap and two conjugations; the packing's
        factor 2 is taken out of the integer pre-multiplier (two separate
        bootstraps where it is odd)."""
        ba = float(a.bound) if bound_a is None else min(float(bound_a), float(a.bound))
        bb = float(b.bound) if bound_b is None else min(float(bound_b), float(b.bound))
        self.check_input(ba, "the first values")
        self.check_input(bb, "the second values")
        stc_first = self.resolve(stc_first)
        self._check_early(stc_first)
        return self._run("bootstrap_pair", stc_first, a, b, ba, bb)

    def bootstrap_many(self, cts: list, bounds: List[float], stc_first: Optional[bool] = None) -> list:
        """Real ciphertexts paired in order into complex-packed bootstraps (the
        last one alone when their count is odd), all in one C++ call; each
        result as :meth:`bootstrap_pair` (or :meth:`bootstrap` with
        ``real_values``) returns it. ``bounds``: one per ciphertext."""
        if len(bounds) != len(cts):
            raise ValueError(f"bootstrap_many needs one bound per ciphertext ({len(cts)}), got {len(bounds)}")
        bs = [min(float(b), float(c.bound)) for b, c in zip(bounds, cts)]
        for k, b in enumerate(bs):
            self.check_input(b, f"the values of ciphertext {k}")
        stc_first = self.resolve(stc_first)
        self._check_early(stc_first)
        return self._run("bootstrap_many", stc_first, list(cts), bs)


def bootstrap_tensors(ctx, tensors: list, stc_first: Optional[bool] = None) -> list:
    """Context.bootstrap_many: the ciphertexts of the real tensors, two per
    complex-packed bootstrap, in one executor call (one pair at a time, so
    memory stays that of one bootstrap); complex tensors alone. Each result keeps its tensor's range,
    widened by the bootstrap's error."""
    boot, eng = ctx._bootstrapper, ctx._engine
    stc_first = boot.resolve(stc_first)
    out: list = [None] * len(tensors)
    units: List[Tuple[int, int]] = []  # (tensor, ciphertext of its batch)
    bounds: Dict[int, float] = {}
    for i, t in enumerate(tensors):
        if t.is_complex:
            out[i] = ctx.bootstrap(t, stc_first=stc_first)
            continue
        if stc_first and t._ct.level < boot.params.stc_levels:  # before any work
            raise ValueError(boot.level_error(t._ct.level, f"tensor {i}"))
        lo, hi = ranges.of(t)
        bounds[i] = max(abs(lo), abs(hi))
        boot.check_input(bounds[i], f"the values of tensor {i}")
        units.extend((i, k) for k in range(t.num_ciphertexts))

    def piece(u: Tuple[int, int]):
        ct = tensors[u[0]]._ct
        return ct if ct.batch == 1 else _core.linalg_gather(eng, ct, [u[1]])

    refreshed = boot.bootstrap_many([piece(u) for u in units], [bounds[u[0]] for u in units], stc_first)
    fresh = dict(zip(units, refreshed))
    for i, b in bounds.items():
        t = tensors[i]
        parts = [fresh[(i, k)] for k in range(t.num_ciphertexts)]
        ct = parts[0] if len(parts) == 1 else _core.linalg_assemble(eng, [(p, 0) for p in parts])
        e = boot.error_bound(b, stc_first)
        lo, hi = ranges.of(t)
        out[i] = ranges.with_range(t._like(ct.with_scale(ct.scale, b + e)), (lo - e, hi + e))
    return out
