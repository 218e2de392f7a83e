"""Training support without a general autograd: the tape of a training forward,
parameter handles with their gradients, and ``model.backward``.

A model in training mode (``model.train()``) records a :class:`Tape` on every
forward: the input of each module call, the tensors each layer's backward
needs (saved by the forward with ``run.save``; ciphertexts stay ciphertexts)
and whether anything trainable ran before each module (if not, the module's
input gradient is never computed: the paper skips dX below the first
adapter). ``model.backward(loss)`` (or a gradient of the model's output)
then calls each module's backward in reverse, in the same mode as the forward
(plain, simulate, encrypted), with bootstraps placed by the forward's
:class:`hetensor.nn.run.Run`. Gradients accumulate on the trainable weights
until ``zero_grad()``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .tensors import CipherArray, PlainArray, SimTensor


class Parameter:
    """Handle of one trainable weight: ``data`` (numpy or CipherTensor, read and
    written through the owning module), ``grad`` (same kind, or None) and
    ``scale``: the stored weight is ``scale`` times the natural one (encrypted
    LoRA B is stored as ``(alpha / rank) B^T``), so optimizers step in the
    natural parametrisation, as torch does.
    """

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name = module, name

    @property
    def data(self) -> Any:
        return self.module._params[self.name]

    @data.setter
    def data(self, value: Any) -> None:
        self.module.register_parameter(self.name, value, trainable=True)
        self.module._changed()

    @property
    def scale(self) -> float:
        if self.name == "lora_B" and getattr(self.module, "adapters_encrypted", False):
            return float(self.module.scaling)
        return 1.0

    @property
    def encrypted(self) -> bool:
        return not isinstance(self.data, np.ndarray)

    @property
    def grad(self) -> Any:
        """The accumulated gradient: numpy (plain, simulate) or a CipherTensor; None before a backward."""
        g = self.module.__dict__.get("_grads", {}).get(self.name)
        return unwrap(g)

    @grad.setter
    def grad(self, value: Any) -> None:
        """Set the gradient, as torch allows ``p.grad = ...``: numpy (same shape as ``data``)
        for a plaintext parameter; for an encrypted one a CipherTensor in ``data``'s stored form
        and context (for instance a gradient summed elsewhere). None clears it."""
        if value is None:
            self.zero_grad()
            return
        from ..tensor import CipherTensor

        if isinstance(value, CipherTensor):
            if not self.encrypted:
                raise ValueError(f"{self!r} is plaintext: give its gradient as a numpy array")
            if tuple(value.shape) != self.shape:
                raise ValueError(f"gradient shape {tuple(value.shape)} != parameter shape {self.shape} (the stored "
                                 f"form: A^T and (alpha / rank) B^T)")
            if value.context is not self.data.context:
                raise ValueError(f"the gradient of {self!r} belongs to another context than its data")
            from .run import Run
            from .tensors import CipherArray

            self.module.__dict__.setdefault("_grads", {})[self.name] = CipherArray(value, True)
            self.module.__dict__.setdefault("_grad_runs", {})[self.name] = Run(
                _root_of(self.module), "encrypted", ctx=value.context, batch=1, seq_len=1)
            return
        v = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
        if self.encrypted:
            raise ValueError(f"{self!r} is encrypted: give its gradient as a CipherTensor (the stored form) or "
                             f"let model.backward compute it")
        if v.shape != self.shape:
            raise ValueError(f"gradient shape {v.shape} != parameter shape {self.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("the gradient holds NaN or Inf")
        from .run import Run

        self.module.__dict__.setdefault("_grads", {})[self.name] = PlainArray(v)
        self.module.__dict__.setdefault("_grad_runs", {})[self.name] = Run(_root_of(self.module), "plain", batch=1,
                                                                           seq_len=1)

    @property
    def grad_tensor(self) -> Any:
        """The gradient in the tensor interface (PlainArray, SimTensor or CipherArray)."""
        return self.module.__dict__.get("_grads", {}).get(self.name)

    def zero_grad(self) -> None:
        self.module.__dict__.get("_grads", {}).pop(self.name, None)

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    def __repr__(self) -> str:
        kind = "encrypted" if self.encrypted else "numpy"
        return f"Parameter({type(self.module).__name__}.{self.name}, shape={self.shape}, {kind})"


def _root_of(module: Any) -> Any:
    return module


def unwrap(t: Any) -> Any:
    """numpy for PlainArray / SimTensor, the CipherTensor for CipherArray."""
    if t is None:
        return None
    if isinstance(t, CipherArray):
        return t.t
    if isinstance(t, PlainArray):
        return t.v
    return t


def wrap_like(x: Any, like: Any) -> Any:
    """``x`` (numpy or CipherTensor) in the tensor interface of ``like``."""
    if isinstance(x, (PlainArray, CipherArray)):
        return x
    if isinstance(like, CipherArray):
        from ..tensor import CipherTensor

        if not isinstance(x, CipherTensor):
            raise TypeError("the model ran encrypted: give the gradient of its output as a CipherTensor")
        return CipherArray(x, like.make_keys)
    v = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if isinstance(like, SimTensor):
        return SimTensor(v, like.lv, like.model, like.rng)
    return PlainArray(v)


#: Backward functions by layer class, registered by :mod:`hetensor.nn.backward`
#: (``fn(module, grad, run, need_dx) -> input gradient or None``).
BACKWARD: Dict[type, Callable] = {}

#: Widening of the ranges recorded at backward sites (a bound of 2x the largest value seen).
GRAD_MARGIN = 1.0


def register(cls: type) -> Callable:
    """Decorator: ``fn`` is the backward of ``cls`` (and its subclasses without their own)."""
    def deco(fn: Callable) -> Callable:
        BACKWARD[cls] = fn
        return fn

    return deco


def backward_module(module: Any, grad: Any, run: Any) -> Any:
    """The gradient of ``module``'s input from that of its output (None when not needed)."""
    if grad is None:
        return None
    tape = run.tape
    need_dx = tape.need_dx.get(id(module), True)
    if not need_dx and not tape._is_trainable(module):
        return None
    for cls in type(module).__mro__:
        fn = BACKWARD.get(cls)
        if fn is not None:
            return fn(module, grad, run, need_dx)
    raise NotImplementedError(f"{type(module).__name__} has no backward pass in hetensor.nn")


def backward(model: Any, grad: Any) -> None:
    """Backward of the model's last training forward (see :meth:`hetensor.nn.Module.backward`)."""
    run = getattr(model, "last_run", None)
    tape = getattr(run, "tape", None)
    if tape is None:
        raise RuntimeError("model.backward needs a training forward: call model.train() before the forward "
                           "(a forward in eval mode keeps no activations), and backward only once per forward")
    if run.root is not model:
        raise RuntimeError("model.backward must be called on the model whose forward recorded the tape")
    y = tape.output
    if hasattr(grad, "gradient_tensor"):  # a hetensor.nn.loss.Loss
        g = grad.gradient_tensor(y, run)
    else:
        if isinstance(grad, np.ndarray) and grad.ndim == 3 and grad.size == int(np.prod(y.shape)):
            grad = grad.reshape(y.shape)  # (batch, seq, d) outputs are (batch * seq, d) token matrices
        g = wrap_like(grad, y)
        if tuple(g.shape) != tuple(y.shape):
            raise ValueError(f"the gradient has shape {tuple(g.shape)}, the model's output {tuple(y.shape)}")
    try:
        backward_module(model, g, run)
    finally:
        if not tape.calibrating:
            run.tape = None  # the activations are freed, as torch frees its graph


def parameters(model: Any) -> List[Parameter]:
    """Handles of the trainable weights of ``model``, in module order."""
    out = []
    for m in model.modules():
        for name in sorted(m.__dict__.get("_trainable", ())):
            if m._params.get(name) is not None:
                out.append(Parameter(m, name))
    return out


def zero_grad(model: Any) -> None:
    for m in model.modules():
        m.__dict__.pop("_grads", None)


def bound_of(module: Any, site: str, margin: float) -> Optional[float]:
    r = module.ranges.get(site)
    if r is None:
        return None
    return max(abs(float(r[0])), abs(float(r[1])), 1e-30) * (1.0 + margin)


#: Bound on |weight| used to scale encrypted weights into the bootstrapping range:
#: the largest value calibration saw times this, at least 1.
PARAM_MARGIN = 4.0


def param_bound(p: Parameter) -> float:
    r = p.module.ranges.get("param." + p.name)
    top = 0.0 if r is None else max(abs(float(r[0])), abs(float(r[1])))
    return max(1.0, PARAM_MARGIN * top)


def grad_bound(p: Parameter) -> Optional[float]:
    """Bound on |natural gradient| from calibration (None when not calibrated)."""
    r = p.module.ranges.get("grad." + p.name)
    if r is None:
        return None
    return max(abs(float(r[0])), abs(float(r[1])), 1e-12) * (1.0 + GRAD_MARGIN)
