"""Context: CKKS parameters, keys and the entry points encrypt / decrypt.

A context owns its secret key: it is never pickled, logged or printed.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Iterable, List, Optional

import numpy as np

from . import _codec, _core, _registry, cuda, ranges
from ._convert import is_torch_tensor, to_numpy, to_rows

if TYPE_CHECKING:
    from .boot import BootstrapContract
    from .tensor import CipherTensor


# Noise flooding for decryptions that are released (docs/SECURITY.md): a
# flooding width of sqrt(12 tau) 2^(s/2) B hides an error of size B over tau
# released decryptions with s bits of statistical security (Li-Micciancio;
# OpenFHE's NOISE_FLOODING_DECRYPT uses the same rule). For s = 30, tau = 1
# and B <= 2^10 (a fresh or moderately evaluated ciphertext of the presets,
# not a bootstrapped one): 2^26.8, rounded up to 2^27.
RELEASE_FLOOD_BITS = 27.0


def _flood_sigma(flood_bits: Any) -> float:
    if isinstance(flood_bits, bool) or not isinstance(flood_bits, numbers.Real):
        raise TypeError(f"flood_bits must be a number, got {type(flood_bits).__name__}")
    b = float(flood_bits)
    if not 4.0 <= b <= 50.0:
        raise ValueError(f"flood_bits must be in [4, 50], got {b}")
    return 2.0 ** b


def _integer(name: str, value: Any) -> int:
    """An integer parameter: 12.9 or True is refused rather than truncated."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if not -(2**31) < v < 2**31:
        raise ValueError(f"{name} = {v} is out of range")
    return v


def presets() -> List[str]:
    """Names of the built-in parameter presets (``toy-insecure``, ``n14`` ...)."""
    return list(_core.preset_names())


class Context:
    """Parameters, keys and encoder of one CKKS instance.

    Create one with :meth:`from_preset` (or :meth:`from_params`). Ciphertexts
    remember the context that made them; mixing contexts raises ``ValueError``.
    """

    def __init__(self, engine: "_core.Engine", name: str) -> None:
        self._engine = engine
        self._name = name
        self._bootstrapper = None
        self._device = "cpu"  # where encrypt puts the ciphertexts (from_preset / from_params device=)
        self._fresh_level = int(engine.max_level)
        self._key_id = int(_core.key_id(engine))
        _registry.register(self, self._key_id, int(engine.params_hash))

    # -- construction -----------------------------------------------------
    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        rotations: Optional[Iterable[int]] = None,
        seed: Optional[int] = None,
        conjugation: bool = False,
        bootstrap: bool = False,
        key_policy: str = "exact",
        auto_keys: bool = False,
        device: Any = "cpu",
        compact_keys: Optional[bool] = None,
        bootstrap_order: str = "stc_first",
    ) -> "Context":
        """Create parameters and keys (secret, public, relinearization) from a preset.

        Args:
            name: one of :func:`presets`; names ending in ``-insecure`` are for tests.
            rotations: slot rotation steps to make Galois keys for now.
            seed: makes key generation and encryption deterministic. For
                reproducible tests only: a seeded context is not secure.
            conjugation: also make the conjugation key.
            bootstrap: prepare bootstrapping (its transforms and exactly the keys it
                needs, with a progress bar); only for presets that support it
                (``hetensor.boot.BOOT_PRESETS``). Fresh ciphertexts then start at
                :attr:`fresh_level`, the level a bootstrap refreshes to.
            key_policy: how matrix operations use rotation keys (:attr:`key_policy`).
            auto_keys: make missing rotation keys on the fly (:attr:`auto_keys`).
            device: where the ciphertexts live and are computed: ``"cpu"`` or
                ``"cuda:N"`` (``encrypt`` puts them there, :meth:`CipherTensor.to`
                moves them); a CUDA device without a CUDA build or GPU raises
                RuntimeError (:func:`hetensor.cuda.parse_device`).
            compact_keys: store rotation, conjugation and encapsulation keys as
                their ``b`` halves plus seeds, regenerating the uniform ``a``
                halves at each use (AES-256-CTR): half the key memory, a little
                more time per key switch (:attr:`compact_keys`). None (the
                default): compact when ``bootstrap=True`` (n16-boot: 3.5 GiB of
                keys instead of 7.4), expanded otherwise. The relinearization
                key is compact only with an explicit ``True``: it serves every
                multiply (17 of them in an n16-boot EvalMod), where regenerating
                its ``a`` halves costs 6 % of the multiply, for 80 MiB at n16-boot.
            bootstrap_order: the order :meth:`bootstrap` runs in by default, with
                ``bootstrap=True``: ``"stc_first"`` (SlotToCoeff on the input's last
                3 levels, then ModRaise, CoeffToSlot, EvalMod: more precise and
                faster) or ``"classic"`` (ModRaise at level 0 first, SlotToCoeff
                last). It sets :attr:`bootstrap_contract` (the lowest input level
                and the output level, which is :attr:`fresh_level`); the other
                order stays available per call.
        """
        where = cuda.parse_device(device)
        if not isinstance(name, str):
            raise TypeError("preset name must be a string; see hetensor.presets()")
        if compact_keys is not None and not isinstance(compact_keys, bool):
            raise TypeError(f"compact_keys must be True, False or None, got {compact_keys!r}")
        from .boot import ORDERS

        if bootstrap_order not in ORDERS:
            raise ValueError(f"bootstrap_order must be one of {', '.join(repr(o) for o in ORDERS)}, "
                             f"got {bootstrap_order!r}")
        literal = _core.preset_literal(name)
        ctx = cls._create(literal, None, seed, False)
        explicit_compact = compact_keys is True
        if compact_keys is None:
            compact_keys = bool(bootstrap)
        ctx.compact_keys = compact_keys
        if explicit_compact:
            ctx._engine.compact_relin_key()  # before anything uses the engine
        if rotations is not None:
            ctx.generate_rotation_keys(rotations)
        if conjugation:
            ctx.generate_conjugation_key()
        ctx.key_policy, ctx.auto_keys = key_policy, auto_keys
        ctx._device = where
        if bootstrap:
            from .boot import BOOT_PRESETS, Bootstrapper

            if name not in BOOT_PRESETS:
                raise ValueError(
                    f"preset '{name}' does not support bootstrapping; use one of {sorted(BOOT_PRESETS)}")
            ctx._attach_bootstrapper(Bootstrapper(ctx, BOOT_PRESETS[name], bootstrap_order))
            ctx._bootstrapper.generate_keys(progress=True)
        return ctx

    def _attach_bootstrapper(self, boot: Any) -> None:
        """Bootstrapping on: fresh ciphertexts start where its bootstraps return."""
        self._bootstrapper = boot
        self._fresh_level = int(boot.contract.output_level)

    @classmethod
    def from_params(
        cls,
        *,
        log_n: int,
        levels: int,
        scale_bits: int = 40,
        first_prime_bits: int = 60,
        dnum: int = 1,
        special_prime_bits: int = 60,
        special_primes: int = 0,
        hamming_weight: int = 0,
        sigma: float = 3.2,
        allow_insecure: bool = False,
        name: str = "custom",
        level_bits: Optional[Iterable[int]] = None,
        rotations: Optional[Iterable[int]] = None,
        seed: Optional[int] = None,
        conjugation: bool = False,
        key_policy: str = "exact",
        auto_keys: bool = False,
        device: Any = "cpu",
    ) -> "Context":
        """Create a context from explicit parameters.

        The parameters are checked against the 128-bit HE standard: log2(QP)
        within the bound for N, ``sigma >= 3.19``, and a uniform ternary secret
        (``hamming_weight=0``) or a fixed weight of at least N/2; integer
        arguments must be integers. ``allow_insecure=True`` skips the security
        check (tests only) and raises :class:`hetensor.SecurityError` otherwise.
        ``level_bits`` (one size per level, q_1 .. q_L) builds chains whose
        primes differ by level, as bootstrapping needs. ``device`` as in :meth:`from_preset`.
        """
        where = cuda.parse_device(device)
        lit = _core.ParamsLiteral()
        if not isinstance(name, str):
            raise TypeError("name must be a string")
        lit.name = name
        lit.log_n = _integer("log_n", log_n)
        lit.levels = _integer("levels", levels)
        lit.scale_bits = _integer("scale_bits", scale_bits)
        lit.first_prime_bits = _integer("first_prime_bits", first_prime_bits)
        lit.dnum = _integer("dnum", dnum)
        lit.special_prime_bits = _integer("special_prime_bits", special_prime_bits)
        lit.special_primes = _integer("special_primes", special_primes)
        lit.hamming_weight = _integer("hamming_weight", hamming_weight)
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise TypeError(f"sigma must be a real number, got {sigma!r}")
        if not math.isfinite(float(sigma)):
            raise ValueError(f"invalid sigma {sigma!r}: it must be finite")
        lit.sigma = float(sigma)
        if not isinstance(allow_insecure, bool):
            raise TypeError("allow_insecure must be True or False")
        lit.allow_insecure = allow_insecure
        if level_bits is not None:
            lit.level_bits = [_integer("level_bits entry", b) for b in level_bits]
        ctx = cls._create(lit, rotations, seed, conjugation)
        ctx.key_policy, ctx.auto_keys = key_policy, auto_keys
        ctx._device = where
        return ctx

    @classmethod
    def _create(cls, literal: Any, rotations, seed, conjugation) -> "Context":
        if seed is not None:
            seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        ctx = cls(_core.Engine(literal, seed), literal.name)
        if rotations:
            ctx.generate_rotation_keys(rotations)
        if conjugation:
            ctx.generate_conjugation_key()
        return ctx

    # -- facts --------------------------------------------------------------
    @property
    def device(self) -> str:
        """Where :meth:`encrypt` puts this context's ciphertexts: ``"cpu"`` or ``"cuda:N"``."""
        return self._device

    @property
    def name(self) -> str:
        """Preset or parameter-set name."""
        return self._name

    @property
    def ring_degree(self) -> int:
        """N, the degree of the ring Z[X]/(X^N + 1)."""
        return int(self._engine.ring_degree)

    @property
    def slots(self) -> int:
        """Values per ciphertext: N/2."""
        return int(self._engine.slots)

    @property
    def max_level(self) -> int:
        """Top level of the modulus chain. Fresh ciphertexts start at :attr:`fresh_level`,
        which equals it unless the context bootstraps."""
        return int(self._engine.max_level)

    @property
    def scale(self) -> float:
        """Scale of a fresh ciphertext (about 2^scale_bits)."""
        return float(self._engine.scale_at(self._fresh_level))

    @property
    def fresh_level(self) -> int:
        """Level of a fresh ciphertext: max_level, or the bootstrap output level
        (``bootstrap_contract.output_level``)."""
        return self._fresh_level

    @property
    def bootstrap_contract(self) -> Optional["BootstrapContract"]:
        """The levels :meth:`bootstrap` works between in this context's order
        (:class:`hetensor.boot.BootstrapContract`: ``order``, ``input_level``,
        ``output_level``, ``levels``, ``max_input_bound``), or None when the
        context cannot bootstrap. n16-boot: stc_first, input >= 3, output 12."""
        return None if self._bootstrapper is None else self._bootstrapper.contract

    @property
    def usable_levels(self) -> int:
        """Levels a computation can consume from a fresh (or bootstrapped)
        ciphertext before it must be bootstrapped: ``fresh_level`` minus the
        bootstrap's input level (9 at n16-boot in either order; the whole
        chain, ``fresh_level``, for a context that cannot bootstrap)."""
        c = self.bootstrap_contract
        return self._fresh_level - (0 if c is None else int(c.input_level))

    @property
    def can_bootstrap(self) -> bool:
        """True when the context was created with ``bootstrap=True``."""
        return self._bootstrapper is not None

    def _check_bootstrappable(self, ct: Any) -> None:
        from .tensor import CipherTensor

        if not isinstance(ct, CipherTensor):
            raise TypeError(f"bootstrap expects a CipherTensor, got {type(ct).__name__}")
        if ct.context is not self:
            raise ValueError("cannot bootstrap: the tensor belongs to another context")
        if self._bootstrapper is None:
            raise ValueError("this context cannot bootstrap; create it with from_preset(..., bootstrap=True) "
                             "on a preset that supports it")

    def bootstrap(self, ct: "CipherTensor", *, stc_first: Optional[bool] = None) -> "CipherTensor":
        """Refresh a ciphertext to :attr:`fresh_level`; it consumes no levels of the input.

        Contract (:attr:`bootstrap_contract`): the tracked
        :attr:`CipherTensor.value_range` must lie in [-8, 8]
        (``hetensor.boot.MAX_INPUT_BOUND``), else ``ValueError``; the output's
        tracked range is the input's widened by the bootstrap's error
        (``Bootstrapper.error_bound``, that of the order run), so bootstraps chain.

        The order: by default the context's (``bootstrap_order`` of
        :meth:`from_preset`), which is SlotToCoeff first: it runs SlotToCoeff
        on the input's last 3 levels, so the input must be at level >= 3
        (``bootstrap_contract.input_level``; a ciphertext above is brought
        down, one below raises ``ValueError``) and returns at
        :attr:`fresh_level`: 9 levels between bootstraps at n16-boot (compute
        from 12 down to 3), error about 2^-25.6 there and 2^-29 at N = 2^12 for
        |x| <= 1, growing like |x|^5 beyond (docs/BOOTSTRAP.md). For a real
        tensor it runs one EvalMod instead of two.

        ``stc_first=False`` runs the classic order (ModRaise at level 0 first,
        SlotToCoeff last): any input level, output 3 levels lower
        (``fresh_level - 3`` in a stc_first context), error about 2^-22 at
        n16-boot and 2^-28 at N = 2^12. ``stc_first=True`` forces the
        SlotToCoeff-first order in a context made for the classic one (output
        3 levels above its ``fresh_level``). Both orders use the same keys; the
        other order's SlotToCoeff is encoded on its first call (the classic
        one's: 1.5 GB more at n16-boot).
        """
        self._check_bootstrappable(ct)
        lo, hi = ranges.of(ct)
        boot = self._bootstrapper
        early = boot.resolve(stc_first)
        if ct.is_complex:
            bound = float(ct._ct.bound)
            return ct._like(boot.bootstrap(ct._ct, bound, early))
        bound = max(abs(lo), abs(hi))
        e = boot.error_bound(bound, early)
        out = boot.bootstrap(ct._ct, bound, early, real_values=True)
        return ranges.with_range(ct._like(out), (lo - e, hi + e))

    def bootstrap_many(self, tensors: Iterable["CipherTensor"], *,
                       stc_first: Optional[bool] = None) -> List["CipherTensor"]:
        """Bootstrap several tensors, two real ciphertexts at a time in one
        complex-packed bootstrap (a + i b, then both real parts back): about half
        the cost per ciphertext. The ciphertexts of all real tensors (a tensor
        larger than the slots holds several) are paired in order, so one real
        tensor of two ciphertexts also takes one bootstrap; complex tensors and
        an odd ciphertext out bootstrap alone. Returns the refreshed tensors in
        the input order; each has the contract and precision of :meth:`bootstrap`
        (the imaginary noise of real tensors is dropped). ``stc_first``: the
        order, as in :meth:`bootstrap` (in the stc_first order every tensor must
        be at level >= 3: checked before any work).
        """
        from .boot import bootstrap_tensors

        items = list(tensors)
        for t in items:
            self._check_bootstrappable(t)
        return bootstrap_tensors(self, items, stc_first)

    @property
    def is_secure(self) -> bool:
        """True when the parameters meet the 128-bit HE standard (log2(QP)
        within the bound, sigma >= 3.19, a dense ternary secret) and the keys
        come from the OS CSPRNG: a context made with ``seed=`` is never secure."""
        return bool(self._engine.is_secure)

    @property
    def params_secure(self) -> bool:
        """True when the parameters alone meet the 128-bit HE standard (a
        seeded context can have secure parameters and still not be secure)."""
        return not self._engine.params_problem

    @property
    def security_problem(self) -> str:
        """Why :attr:`is_secure` is False ('' when it is True)."""
        return str(self._engine.security_problem)

    @property
    def is_public(self) -> bool:
        """True for an evaluation-only context (no secret key; see :meth:`public`)."""
        return bool(self._engine.is_public)

    @property
    def dnum(self) -> int:
        """Number of key-switching digits."""
        return int(self._engine.dnum)

    @property
    def log_qp(self) -> float:
        """log2 of the whole modulus Q*P, special primes included."""
        return float(self._engine.log_qp)

    @property
    def max_value(self) -> float:
        """Largest |x| that encrypt accepts: it must survive to the last level."""
        return float(self._engine.max_encrypt_magnitude)

    def scale_at(self, level: int) -> float:
        """The canonical scale of ciphertexts at ``level``."""
        return float(self._engine.scale_at(int(level)))

    def describe(self) -> str:
        """One line with N, levels, moduli sizes, dnum, secret and security."""
        return str(self._engine.describe())

    def key_bytes(self, steps: Optional[Iterable[int]] = None) -> int:
        """Bytes held by public, relinearization and rotation keys; with ``steps``, the
        bytes that rotation keys for them would add (steps with keys count 0), to
        check memory before :meth:`generate_rotation_keys`."""
        if steps is None:
            return int(self._engine.key_bytes())
        from .linalg import key_bytes

        return key_bytes(self, steps)

    def __repr__(self) -> str:
        return f"Context({self.describe()})"

    # -- keys ---------------------------------------------------------------
    @property
    def key_policy(self) -> str:
        """How matrix operations use rotation keys: ``"exact"`` (one key per step, the
        default), ``"few"`` (product loops chained: fewer keys, more key switches) or
        ``"power-of-two"`` (keys for +-2^k only, rotations composed). See
        :mod:`hetensor.linalg.keypolicy`."""
        from .linalg import key_policy

        return key_policy(self)

    @key_policy.setter
    def key_policy(self, policy: str) -> None:
        from .linalg import set_key_policy

        set_key_policy(self, policy)

    @property
    def auto_keys(self) -> bool:
        """Make missing rotation keys when an operation first needs them (one log line
        on the ``hetensor`` logger) instead of raising :class:`hetensor.MissingKeyError`."""
        from .linalg import auto_keys

        return auto_keys(self)

    @auto_keys.setter
    def auto_keys(self, on: bool) -> None:
        from .linalg import set_auto_keys

        set_auto_keys(self, on)

    @property
    def compact_keys(self) -> bool:
        """Whether keys made from now on are compact: ``b`` halves stored, the
        uniform ``a`` halves regenerated from 32-byte seeds at each key switch
        (AES-256-CTR, AES-NI where the CPU has it). Half the memory of a
        rotation key for a few percent more time per rotation.
        ``from_preset(compact_keys=True)`` makes the relinearization key compact
        too (the default with ``bootstrap=True`` keeps it expanded); setting this later affects
        new keys only. A loaded context with compact keys keeps making them."""
        return bool(self._engine.compact_keys)

    @compact_keys.setter
    def compact_keys(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise TypeError(f"compact_keys must be True or False, got {on!r}")
        self._engine.compact_keys = on

    def generate_rotation_keys(self, steps: Iterable[int]) -> None:
        """Make Galois keys for the given slot rotation steps, for every level
        (existing keys are kept; a bootstrap's key trimmed to low levels is
        made again for every level)."""
        from .tensor import _check_step

        steps = [_check_step(s) for s in steps]
        self._engine.generate_rotation_keys(steps)

    def generate_conjugation_key(self) -> None:
        """Make the key for complex conjugation of the slots, for every level."""
        self._engine.generate_conjugation_key()

    @property
    def rotation_steps(self) -> List[int]:
        """Rotation steps (normalised to [1, slots)) that have keys."""
        return list(self._engine.rotation_steps())

    def rotation_steps_for(self, op: str, *shapes: Any, layouts: Any = None, method: Optional[str] = None,
                           dim: Any = None, level: Any = None) -> List[int]:
        """Exactly the rotation keys a matrix operation uses, so they can be made up front.

        ``op``: ``"cpmm"`` (x @ W: shapes of x and W), ``"pcmm"`` (W @ x),
        ``"ccmm"`` / ``"matmul"`` (x @ y, both encrypted), ``"lora"`` (x @ A @ B),
        ``"sum"`` (``dim=``), ``"broadcast"``, ``"relayout"``, ``"transpose"``,
        ``"add"``; ``layouts`` the operands' layouts when they are not
        ``"matrix"``; ``level`` the operands' level when it is not the fresh
        one (routes depend on it). Pass the result to
        :meth:`generate_rotation_keys`; :meth:`key_bytes` says what they cost.
        See :func:`hetensor.linalg.rotation_steps_for`.

        ``"getitem"`` (``x[key]``: shape, key), ``"roll"`` (``x.roll``: shape,
        shifts, dims) and ``"cat"`` / ``"stack"`` (the shapes) plan the slot moves
        of :mod:`hetensor.shaping` on flat tensors.

        A tensor may stand for its shape (then its layout and level are used):
        ``ctx.rotation_steps_for("sum", x, dim=0)`` lists the keys of ``x.sum(0)``.
        """
        if op in ("getitem", "roll", "cat", "stack"):
            from .shaping import rotation_steps

            if op in ("cat", "stack"):
                shapes = tuple(tuple(s.shape) if hasattr(s, "_ct") else s for s in shapes)
            elif shapes and hasattr(shapes[0], "_ct"):
                shapes = (tuple(shapes[0].shape),) + shapes[1:]
            return rotation_steps(self, op, *shapes)
        from .linalg import rotation_steps_for

        return rotation_steps_for(self, op, *shapes, layouts=layouts, method=method, dim=dim, level=level)

    # -- encryption -----------------------------------------------------------
    def encrypt(self, x: Any, *, symmetric: bool = False, layout: Any = None,
                level: Optional[int] = None) -> "CipherTensor":
        """Encrypt a numpy array, torch tensor, list or scalar.

        Data larger than one ciphertext is split over a batch of ciphertexts
        held in one allocation; unused slots are zero. With ``symmetric=True``
        the secret key encrypts (smaller noise); otherwise the public key.
        ``layout="matrix"`` (or a :class:`hetensor.Layout`) packs a 1-D to 3-D
        array for matrix products (see :mod:`hetensor.linalg`). ``level``
        (default: :attr:`fresh_level`) encrypts lower in the chain: fewer
        limbs, so smaller and faster when only that many levels are needed
        (a symmetric ciphertext keeps its seed, unlike ``level_to`` after
        encrypting).
        """
        from .tensor import CipherTensor

        lv = self._fresh_level if level is None else _integer("level", level)
        if not 0 <= lv <= self._fresh_level:
            raise ValueError(f"level must be in [0, {self._fresh_level}] (the fresh level), got {lv}")
        if layout is not None:
            from .linalg import encrypt_matrix

            out = encrypt_matrix(self, x, layout, symmetric, cls=CipherTensor, level=lv)
        else:
            arr = to_numpy(x)
            rows, _ = to_rows(arr.reshape(-1), self.slots)
            ct = self._engine.encrypt(rows, bool(symmetric), lv)
            out = CipherTensor._wrap(self, ct, arr.shape, np.iscomplexobj(arr), is_torch_tensor(x))
            ranges.with_range(out, ranges.of_values(arr))
        if is_torch_tensor(x):
            out._tmeta = (x.dtype, x.device)  # decrypt gives them back
        return out if self._device == "cpu" else out.to(self._device)

    def encode(self, x: Any, *, level: Optional[int] = None, purpose: str = "auto") -> "PlainTensor":
        """Encode values once, for reuse in many ``ct * pt`` and ``ct + pt``.

        Args:
            x: numpy array, torch tensor, list or scalar.
            level: the level of the ciphertexts it will meet (default: the top).
            purpose: ``"auto"`` (default) encodes for products now and keeps the
                values, so that sums, and ciphertexts at other levels, get their
                own encoding on first use (cached in the PlainTensor);
                ``"multiply"`` or ``"add"`` encode exactly one variant (the two
                need different scales) and keep no values.
        """
        from .plain import PlainTensor

        if purpose not in ("multiply", "add", "auto"):
            raise ValueError("purpose must be 'auto', 'multiply' or 'add'")
        lv = self.max_level if level is None else int(level)
        if not 0 <= lv <= self.max_level:
            raise ValueError(f"level must be in [0, {self.max_level}]")
        if purpose == "multiply" and lv < 1:
            raise ValueError("a plaintext multiplier needs level >= 1 (the product is rescaled)")
        arr = to_numpy(x)
        rows, _ = to_rows(arr.reshape(-1), self.slots)
        pt = self._engine.encode(rows, lv, purpose == "multiply" or (purpose == "auto" and lv >= 1))
        out = PlainTensor._wrap(self, pt, arr.shape, purpose, np.iscomplexobj(arr))
        if purpose == "auto":
            out._keep(rows, "multiply" if lv >= 1 else "add")
        return out

    def decrypt(self, ct: "CipherTensor", *, dtype: Any = None, flood_bits: Optional[float] = None,
                device: Any = None) -> Any:
        """Decrypt to a float64 numpy array of the original shape.

        Complex inputs come back as complex128. A torch tensor comes back when
        a torch tensor was encrypted, with its dtype (the complex counterpart
        when the values became complex; float64 for integer inputs) and on its
        device (both survive save / load and pickling). ``dtype`` (numpy or
        torch) asks for another dtype, ``device`` (torch results only) for
        another device.

        ``flood_bits``: for results that leave the key holder (IND-CPA-D; see
        docs/SECURITY.md). Adds a fresh Gaussian of standard deviation
        2^flood_bits (in units of the coefficients, 4 <= flood_bits <= 50)
        before decoding, which hides the secret-dependent error; each value
        then carries an extra error of about 2^flood_bits * sqrt(N/2) / scale.
        :data:`RELEASE_FLOOD_BITS` is the documented choice.
        """
        from .tensor import CipherTensor

        if not isinstance(ct, CipherTensor):
            raise TypeError(f"decrypt expects a CipherTensor, got {type(ct).__name__}")
        if ct.context is not self:
            raise ValueError("cannot decrypt: the tensor belongs to another context")
        if self.is_public:
            raise ValueError("cannot decrypt: this is a public (evaluation-only) context without the secret key; "
                             "send the result to the key holder (ct.save / hetensor.load) and decrypt there")
        if flood_bits is None:
            rows = self._engine.decrypt(ct._ct)
        else:
            rows = self._engine.decrypt_flooded(ct._ct, _flood_sigma(flood_bits))
        size = int(math.prod(ct.shape))
        layout = getattr(ct, "_layout", None)  # matrix packings (hetensor.linalg)
        flat = layout.unpack(rows).reshape(-1) if layout is not None else rows.reshape(-1)[:size]
        out = flat if ct.is_complex else np.ascontiguousarray(flat.real)
        out = out.reshape(ct.shape)
        if ct._torch:
            return _to_torch(out, dtype, getattr(ct, "_tmeta", None), device)
        if device is not None:
            raise ValueError("decrypt: device= applies to tensors encrypted from torch; this one gives numpy")
        return out if dtype is None else out.astype(dtype)

    # -- sharing and saving ---------------------------------------------------------
    def public(self) -> "Context":
        """An evaluation-only view: the same parameters and evaluation keys
        (shared, not copied), no secret key.

        It encrypts with the public key and runs every evaluation op
        (bootstrapping included when this context bootstraps); ``decrypt``
        raises. Save it with :meth:`save` and hand the file to the server.
        Keys generated on this context later are not added to the view.
        """
        pub = Context(self._engine.public_view(), self._name)
        pub._device = self._device
        pub._fresh_level = self._fresh_level
        if self._bootstrapper is not None:
            import copy

            boot = copy.copy(self._bootstrapper)  # encoded transforms shared: same C++ context
            boot.ctx = pub
            pub._bootstrapper = boot
        return pub

    def to_bytes(self, *, compress: bool = True, include_secret_key: bool = False,
                 params_only: bool = False) -> bytes:
        """Parameters and keys in hetensor's binary format (see :func:`hetensor.save`).

        ``params_only=True`` writes the parameters alone (no key, secret or
        public); :func:`hetensor.load` returns them as the keyword arguments
        of :meth:`from_params`.

        A context that holds the secret key is written only with
        ``include_secret_key=True``: the file then decrypts everything
        encrypted under these keys; keep it private. Share :meth:`public` instead.
        """
        if params_only:
            return _codec.params_bytes(self)
        return _codec.context_bytes(self, compress, include_secret_key)

    def save(self, file: Any, *, compress: bool = True, include_secret_key: bool = False) -> None:
        """Write :meth:`to_bytes` to a path or binary file; load with :func:`hetensor.load`.
        A path is written through a memory map: the keys are not copied."""
        _codec.save_context(self, file, compress, include_secret_key)

    def __reduce__(self):
        if not self.is_public:
            raise TypeError("a hetensor Context holds a secret key and is not picklable; pickle ctx.public(), or "
                            "save it explicitly with ctx.save(path, include_secret_key=True)")
        return _codec.reduce(self)


def _to_torch(out: np.ndarray, dtype: Any, meta: Any, device: Any = None) -> Any:
    """Decrypted values as a torch tensor of the encrypted tensor's dtype and device (``meta``)."""
    import torch

    t = torch.from_numpy(np.array(out))
    want = dtype if dtype is not None else (meta[0] if meta is not None else None)
    if isinstance(want, (type, np.dtype, str)):  # a numpy dtype
        want = torch.from_numpy(np.zeros(0, dtype=want)).dtype
    if want is not None:
        if not (want.is_floating_point or want.is_complex) and dtype is None:
            want = torch.float64  # approximate values are not rounded to the input's integers
        if t.is_complex() and not want.is_complex:
            want = torch.complex64 if want in (torch.float32, torch.float16, torch.bfloat16) else torch.complex128
        t = t.to(want)
    where = device if device is not None else (meta[1] if meta is not None else None)
    if where is not None and str(where) != "cpu":
        try:
            t = t.to(where)
        except (RuntimeError, AssertionError, TypeError) as e:  # e.g. a CUDA device on a machine without one
            raise RuntimeError(f"cannot decrypt onto device {str(where)!r} ({e}); pass device='cpu' to decrypt, "
                               "or map_location='cpu' to hetensor.load") from None
    return t
