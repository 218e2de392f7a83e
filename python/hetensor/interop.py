"""numpy and torch protocols for CipherTensor: ``np.add(X, 1)``, ``torch.add(X, 1)``, ``torch.cat([X, Y])``.

Only operations with a CKKS counterpart are dispatched: additions,
subtractions, products (element-wise and matrix), negation, division by
plaintext values, sums, means, concatenation, roll and reshape. Anything else
raises a TypeError that says what is supported and, for the usual non-linear
functions, which ``hetensor.approx`` approximation to evaluate instead.

This module knows CipherTensors by the class that calls it (tensor.py imports
it, not the reverse).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Sequence, Tuple

from . import shaping

SUPPORTED = ("add, subtract/sub, multiply/mul, divide/true_divide (by plaintext values), negative/neg, "
             "matmul, square, power (positive integer), sum, mean, cat/concatenate, stack, roll, reshape, "
             "flatten, clone")

# non-linear functions with an approximation in hetensor.approx
_APPROX = {"exp": "exp", "sigmoid": "sigmoid", "relu": "relu", "gelu": "gelu", "rsqrt": "inv_sqrt",
           "reciprocal": "reciprocal", "tanh": "chebyshev(np.tanh, a, b)", "sin": "chebyshev(np.sin, a, b)",
           "cos": "chebyshev(np.cos, a, b)", "log": "chebyshev(np.log, a, b)", "sqrt": "chebyshev(np.sqrt, a, b)"}


def unsupported(lib: str, name: str) -> TypeError:
    """The TypeError for an operation that CKKS tensors do not have."""
    msg = f"{lib}.{name} is not supported on an encrypted tensor (hetensor.CipherTensor); supported: {SUPPORTED}."
    fn = _APPROX.get(name.strip("_"))
    if fn is not None:
        fn = fn if "(" in fn else f"{fn}(a, b)"
        msg += (f" A non-linear function needs a polynomial approximation on an interval [a, b] that holds "
                f"the values: X.polyval(hetensor.approx.{fn}).")
    elif name.strip("_") in ("eq", "ne", "lt", "le", "gt", "ge", "greater", "less", "equal", "not_equal",
                             "maximum", "minimum", "max", "min", "argmax", "argmin", "sort", "abs", "absolute",
                             "sign"):
        msg += " Comparisons of encrypted values need a polynomial approximation (hetensor.approx) or decryption."
    return TypeError(msg)


def _binary(a: Any, b: Any, op: str, is_ct: Callable[[Any], bool]) -> Any:
    """a (op) b where one side is a CipherTensor: its operator or its reflected one."""
    if is_ct(a):
        return getattr(a, f"__{op}__")(b)
    return getattr(b, f"__r{op}__")(a)


# -- numpy ---------------------------------------------------------------------------------

_NP_BINARY = {"add": "add", "subtract": "sub", "multiply": "mul", "matmul": "matmul", "true_divide": "truediv",
              "divide": "truediv"}


def array_ufunc(self: Any, ufunc: Any, method: str, inputs: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """``CipherTensor.__array_ufunc__``: numpy ufuncs that map to CKKS operations."""
    is_ct = lambda v: isinstance(v, type(self))  # noqa: E731
    name = getattr(ufunc, "__name__", str(ufunc))
    if kwargs.get("out") is not None:
        raise TypeError(f"numpy.{name}(..., out=...) is not supported: operations on encrypted tensors make new tensors")
    if method == "reduce" and name == "add" and len(inputs) == 1:
        kw = {k: v for k, v in kwargs.items() if k in ("axis", "keepdims", "dtype")}
        kw.setdefault("axis", 0)  # numpy.add.reduce sums the first axis by default
        return inputs[0].sum(**kw)
    if method != "__call__":
        raise unsupported("numpy", f"{name}.{method}")
    extra = {k: v for k, v in kwargs.items() if k not in ("casting", "order", "subok")}
    if extra:
        raise TypeError(f"numpy.{name} on an encrypted tensor takes no {sorted(extra)} argument(s)")
    if name in _NP_BINARY and len(inputs) == 2:
        return _binary(inputs[0], inputs[1], _NP_BINARY[name], is_ct)
    if name == "negative" and len(inputs) == 1:
        return -inputs[0]
    if name == "positive" and len(inputs) == 1:
        return inputs[0]
    if name == "square" and len(inputs) == 1:
        return inputs[0].square()
    if name == "power" and len(inputs) == 2 and is_ct(inputs[0]):
        return inputs[0] ** inputs[1]
    raise unsupported("numpy", name)


# -- torch ---------------------------------------------------------------------------------

_TORCH_BINARY = {"add": "add", "__add__": "add", "sub": "sub", "subtract": "sub", "__sub__": "sub",
                 "mul": "mul", "multiply": "mul", "__mul__": "mul", "matmul": "matmul", "mm": "matmul",
                 "__matmul__": "matmul", "div": "truediv", "divide": "truediv", "true_divide": "truediv",
                 "__truediv__": "truediv", "__div__": "truediv"}
_TORCH_REFLECTED = {"__radd__": "add", "__rsub__": "sub", "__rmul__": "mul", "__rmatmul__": "matmul",
                    "__rtruediv__": "truediv", "__rdiv__": "truediv"}


def _take(args: Sequence[Any], kwargs: Dict[str, Any], i: int, name: str, default: Any = ...) -> Any:
    if len(args) > i:
        return args[i]
    if name in kwargs:
        return kwargs.pop(name)
    if default is ...:
        raise TypeError(f"missing argument '{name}'")
    return default


def torch_function(cls: type, func: Any, args: Sequence[Any], kwargs: Dict[str, Any]) -> Any:
    """``CipherTensor.__torch_function__``: torch functions and Tensor methods that map to CKKS operations."""
    is_ct = lambda v: isinstance(v, cls)  # noqa: E731
    kwargs = dict(kwargs or {})
    name = getattr(func, "__name__", str(func))
    if kwargs.get("out") is not None:
        raise TypeError(f"torch.{name}(..., out=...) is not supported: operations on encrypted tensors make new tensors")
    kwargs.pop("out", None)
    if name in _TORCH_BINARY or name in _TORCH_REFLECTED:
        a, b = _take(args, kwargs, 0, "input"), _take(args, kwargs, 1, "other")
        if name in _TORCH_REFLECTED:
            a, b, op = b, a, _TORCH_REFLECTED[name]
        else:
            op = _TORCH_BINARY[name]
        alpha = kwargs.pop("alpha", 1)
        if kwargs.pop("rounding_mode", None) is not None:
            raise TypeError("rounding_mode is not supported on encrypted tensors (rounding is not a CKKS operation)")
        if kwargs:
            raise TypeError(f"torch.{name} on an encrypted tensor takes no {sorted(kwargs)} argument(s)")
        if alpha != 1:
            if op not in ("add", "sub"):
                raise TypeError(f"alpha is only for add and sub, not {name}")
            b = b * alpha
        return _binary(a, b, op, is_ct)
    if name in ("neg", "negative", "__neg__"):
        return -_take(args, kwargs, 0, "input")
    if name in ("positive", "__pos__"):
        return _take(args, kwargs, 0, "input")
    if name in ("sum", "mean"):
        x = _take(args, kwargs, 0, "input")
        dim = _take(args, kwargs, 1, "dim", None)
        keepdim = _take(args, kwargs, 2, "keepdim", False)
        return getattr(x, name)(dim, keepdim, **kwargs)
    if name in ("cat", "concat", "concatenate", "stack"):
        tensors = _take(args, kwargs, 0, "tensors")
        dim = _take(args, kwargs, 1, "dim", kwargs.pop("axis", 0))
        fn = shaping.stack if name == "stack" else shaping.cat
        return fn(list(tensors), dim=dim)
    if name == "roll":
        x = _take(args, kwargs, 0, "input")
        return x.roll(_take(args, kwargs, 1, "shifts"), _take(args, kwargs, 2, "dims", None))
    if name in ("reshape", "view"):
        x = _take(args, kwargs, 0, "input")
        shape = tuple(args[1:]) if len(args) > 1 else tuple(kwargs.pop("shape"))
        return x.reshape(*shape)
    if name == "flatten":
        x = _take(args, kwargs, 0, "input")
        return x.flatten(_take(args, kwargs, 1, "start_dim", 0), _take(args, kwargs, 2, "end_dim", -1))
    if name in ("square", "clone", "numel"):
        return getattr(_take(args, kwargs, 0, "input"), name)()
    if name in ("pow", "__pow__"):
        x, e = _take(args, kwargs, 0, "input"), _take(args, kwargs, 1, "exponent")
        if not is_ct(x):
            raise unsupported("torch", name)
        return x ** e
    raise unsupported("torch", name)
