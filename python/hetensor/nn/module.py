"""Module and Sequential: the containers of hetensor.nn, in the spirit of torch.nn.

A Module owns named parameters (numpy arrays: frozen plaintext weights, or
CipherTensors: encrypted adapters), child modules and the calibration record
of its non-linearities. ``forward(x, run)`` is written once against the small
tensor interface of :mod:`hetensor.nn.tensors`; ``run`` (a
:class:`hetensor.nn.run.Run`) says how this call runs (plain, simulate,
encrypted) and carries the batch's attention mask.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np


class Module:
    """Base class of the hetensor.nn layers.

    Like ``torch.nn.Module``: assigning a Module attribute registers a child,
    :meth:`register_parameter` a weight; ``parameters()``, ``named_modules()``,
    ``state_dict()`` / ``load_state_dict()``, ``train()`` / ``eval()``.
    Calling a model runs :meth:`hetensor.nn.Model.__call__` semantics only on
    the root; children are called by their parent's forward with the run.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "training", False)
        # site -> [min, max] seen by calibration (inputs of the non-linearities, bootstrap sites)
        object.__setattr__(self, "ranges", {})

    # -- registration -----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Module):
            self._modules[name] = value
        elif name in self._modules:
            del self._modules[name]
        if name in self._params:
            self._params[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, value: Any, trainable: bool = False) -> None:
        """Register a weight (numpy array, CipherTensor or None) under ``name``."""
        if isinstance(value, np.ndarray):
            value = np.ascontiguousarray(value, dtype=np.float64)
        self._params[name] = value
        object.__setattr__(self, name, value)
        trainable_set = self.__dict__.setdefault("_trainable", set())
        if trainable:
            trainable_set.add(name)

    # -- traversal ----------------------------------------------------------------
    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._modules.items())

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """(dotted name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Any]]:
        """(dotted name, weight) of every registered weight that is set."""
        for mname, m in self.named_modules(prefix):
            for pname, p in m._params.items():
                if p is not None:
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> Iterator[Any]:
        for _, p in self.named_parameters():
            yield p

    def lora_parameters(self) -> Iterator[Any]:
        """Handles (:class:`hetensor.nn.autograd.Parameter`: ``.data``, ``.grad``) of the
        trainable weights, the LoRA adapters; the rest are frozen. Give them to an
        optimizer of :mod:`hetensor.optim`."""
        from .autograd import parameters

        return iter(parameters(self))

    # -- training (hetensor.nn.autograd) ----------------------------------------------
    def backward(self, loss: Any) -> None:
        """Backward of the last forward, which must have run in training mode
        (``model.train()``): ``loss`` is a :class:`hetensor.nn.loss.Loss` made from
        that forward's output, or the gradient of the output (numpy, or a CipherTensor
        when the forward ran encrypted). Gradients of the trainable weights add up in
        ``p.grad`` for ``p in model.lora_parameters()`` until :meth:`zero_grad`."""
        from .autograd import backward

        backward(self, loss)

    def zero_grad(self) -> None:
        """Forget the accumulated gradients of every trainable weight."""
        from .autograd import zero_grad

        zero_grad(self)

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, Any]":
        """Weights by dotted name (numpy arrays are copied; CipherTensors are
        passed by reference) plus each module's calibration ranges under
        ``<module>.ranges.<site>``."""
        out: "OrderedDict[str, Any]" = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = p.copy() if isinstance(p, np.ndarray) else p
        for mname, m in self.named_modules():
            for site, r in m.ranges.items():
                out[f"{mname + '.' if mname else ''}ranges.{site}"] = np.array(r, dtype=np.float64)
        return out

    def load_state_dict(self, state: Dict[str, Any], strict: bool = True) -> None:
        """Load weights and ranges saved by :meth:`state_dict`. With ``strict``,
        missing or unexpected keys and shape mismatches raise ``KeyError`` /
        ``ValueError`` naming them."""
        own = {name: (m, pname) for mname, m in self.named_modules()
               for pname in m._params for name in [f"{mname}.{pname}" if mname else pname]}
        mods = dict(self.named_modules())
        seen = set()
        unexpected = []
        for key, value in state.items():
            if ".ranges." in f".{key}":
                mname, _, site = key.rpartition("ranges.")
                mname = mname[:-1] if mname.endswith(".") else mname
                if mname not in mods:
                    unexpected.append(key)
                    continue
                mods[mname].ranges[site] = [float(v) for v in np.asarray(value).reshape(-1)[:2]]
                continue
            if key not in own:
                unexpected.append(key)
                continue
            m, pname = own[key]
            old = m._params[pname]
            if isinstance(value, np.ndarray) or isinstance(old, np.ndarray):
                value = np.asarray(value, dtype=np.float64)
                if old is not None and tuple(np.shape(old)) != value.shape:
                    raise ValueError(f"cannot load {key}: shape {value.shape} != the module's {tuple(np.shape(old))}")
            m.register_parameter(pname, value, pname in m.__dict__.get("_trainable", ()))
            m._changed()
            seen.add(key)
        if strict:
            missing = [k for k, (m, p) in own.items() if k not in seen and m._params[p] is not None]
            if unexpected or missing:
                raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")

    def _changed(self) -> None:
        """Weights changed: drop what was pre-encoded from them."""
        self.__dict__.pop("_encoded", None)

    # -- modes ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- running ------------------------------------------------------------------
    def forward(self, x: Any, run: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def __call__(self, x: Any, run: Any = None, **kw: Any) -> Any:
        """Root call: ``model(x, mask=None, seq_len=None, progress=False)``. A numpy or
        torch ``x`` ((batch, seq, features) or (tokens, features)) runs in plain mode
        and returns numpy; a CipherTensor token matrix runs encrypted and returns a
        CipherTensor. Children are called by their parent's forward with the run."""
        if run is None:  # the root: set up a run for the input's kind
            from .run import run_model

            return run_model(self, x, **kw)
        if kw:
            raise TypeError(f"unexpected arguments {sorted(kw)} for a child module call")
        return run.call(self, x)

    # -- whole-model entry points (hetensor.nn.compile) -----------------------------
    def calibrate(self, inputs: Any, *, mask: Any = None, margin: Optional[float] = None,
                  max_depth: Optional[int] = None, batch_size: int = 256, seq_len: Optional[int] = None) -> "Module":
        """Record the input range of every non-linearity and bootstrap site on
        ``inputs`` (plain pass, exact functions) and fit the approximations there,
        widened by ``margin`` (default 0.25 of the width), each polynomial within
        ``max_depth`` levels (default 8: n16-boot; use ``ctx.usable_levels - 1``)."""
        from .compile import calibrate

        kw = {k: v for k, v in dict(margin=margin, max_depth=max_depth).items() if v is not None}
        return calibrate(self, inputs, mask=mask, batch_size=batch_size, seq_len=seq_len, **kw)

    def compile(self, ctx: Any, example: Any, *, mask: Any = None, seq_len: Optional[int] = None,
                encrypt_adapters: bool = False, progress: bool = False, key_policy: str = "auto",
                key_budget: Optional[int] = None, placement: str = "search",
                max_trials: Optional[int] = None) -> Any:
        """Prepare encrypted forwards of ``example``'s shape on ``ctx``.

        First a plan without data or keys (:meth:`plan_keys`): the levels, the
        bootstraps and every rotation key of the forward. ``key_policy``:
        ``"exact"``, ``"few"``, ``"power-of-two"`` (see
        :mod:`hetensor.linalg.keypolicy`) or ``"auto"``: the fastest whose new
        keys fit ``key_budget`` bytes (default 4 GiB), else the smallest; the
        choice is set on ``ctx``. ``placement="search"`` moves bootstraps earlier
        where that lowers the whole forward's count (``"just-in-time"``: refresh
        where the levels run out; ``max_trials`` caps the search). The key memory
        is logged (logger ``hetensor``; printed with ``progress``) before the keys
        are made. Then one encrypted forward of ``example`` encodes every weight.
        Returns a :class:`hetensor.nn.compile.CompileReport` (also ``self.plan``)."""
        from .compile import compile_model

        return compile_model(self, ctx, example, mask=mask, seq_len=seq_len, encrypt_adapters=encrypt_adapters,
                             progress=progress, key_policy=key_policy, key_budget=key_budget, placement=placement,
                             max_trials=max_trials)

    def plan_keys(self, ctx: Any, example: Any, *, mask: Any = None, seq_len: Optional[int] = None) -> Dict[str, Any]:
        """The encrypted forward of ``example``'s shape planned under each key policy,
        without data and without making any key: ``{policy: ForwardPlan}`` with the
        key steps, the new keys and their bytes (``ctx.key_bytes``), bootstraps and
        levels. What :meth:`compile` chooses from."""
        from .plan import POLICIES, input_shape, plan_forward

        arr = example.detach().cpu().numpy() if hasattr(example, "detach") else np.asarray(example, dtype=np.float64)
        shape = input_shape(arr, seq_len)
        return {p: plan_forward(self, ctx, shape, mask=mask, policy=p) for p in POLICIES}

    def simulate(self, x: Any, ctx: Any, *, mask: Any = None, seq_len: Optional[int] = None,
                 rng: Any = None) -> Any:
        """Plain forward with the levels, bootstraps and noise (measured on ``ctx``)
        that the encrypted forward would have: predicts its outputs in seconds."""
        from .run import run_model

        return run_model(self, x, mask=mask, seq_len=seq_len, mode="simulate", ctx=ctx, rng=rng)

    def profile(self) -> str:
        """Table of seconds, levels and bootstraps per module of the last forward."""
        from .compile import profile_table

        return profile_table(self)

    # -- repr -----------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Children called in order: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes hetensor.nn modules; item {i} is a {type(layer).__name__}")
            setattr(self, str(i), layer)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def forward(self, x: Any, run: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x, run)
        return x


def named_leaves(model: Module) -> List[Tuple[str, Module]]:
    """The modules without children, in order."""
    return [(n, m) for n, m in model.named_modules() if not m._modules]
