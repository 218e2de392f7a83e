"""Saving and loading: contexts (keys), encrypted and encoded tensors, PlainMatrix.

Every object is one versioned binary record (docs/SECURITY.md, "Format"): a
48-byte header (magic, version, type, parameter hash, key id, length,
checksum) and a payload. The C++ core writes and validates the polynomial
objects; this module adds the Python attributes (shape, layout) and the I/O.

Loading validates the metadata always; by default it also verifies the
checksum and that every residue is below its prime. ``unsafe=True`` skips
those two (for files you wrote yourself). A bad file raises
:class:`hetensor.FormatError`.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from typing import Any, BinaryIO, Optional, Union

import numpy as np

from . import _codec, _core, _registry
from .boot import BOOT_PRESETS, ORDERS, Bootstrapper
from .context import Context
from .errors import FormatError
from .layout import Layout
from .linalg import PlainMatrix
from .plain import PlainTensor
from .tensor import CipherTensor

HEADER_BYTES = int(_core.FORMAT_HEADER_BYTES)
_PARAMS, _CONTEXT, _CIPHERTEXT, _PLAINTEXT, _BLOB = 1, 2, 3, 4, 5
# Streams are read in chunks: memory follows the bytes actually present, not
# the length a header claims.
_CHUNK = 1 << 26

Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO]


# -- writing ---------------------------------------------------------------------------------


def to_bytes(obj: Any, *, compress: bool = True, include_secret_key: bool = False) -> bytes:
    """The bytes of a Context, CipherTensor, PlainTensor or PlainMatrix.

    ``compress`` stores the uniform half of keys and of fresh symmetric
    ciphertexts as 32-byte seeds. A Context that holds the secret key is
    written only with ``include_secret_key=True`` (keep that file private);
    share ``ctx.public()`` instead.
    """
    if isinstance(obj, Context):
        return obj.to_bytes(compress=compress, include_secret_key=include_secret_key)
    if include_secret_key:
        raise TypeError("include_secret_key applies to a Context only")
    if isinstance(obj, CipherTensor):
        return obj.to_bytes(compress=compress)
    if isinstance(obj, (PlainTensor, PlainMatrix)):
        return obj.to_bytes()
    raise TypeError(f"cannot serialize a {type(obj).__name__}; hetensor saves Context, CipherTensor, "
                    "PlainTensor and PlainMatrix objects")


def save(obj: Any, file: Union[str, "os.PathLike[str]", BinaryIO], *, compress: bool = True,
         include_secret_key: bool = False) -> None:
    """Write ``to_bytes(obj)`` to a path or a binary file object (a Context
    saved to a path goes through a memory map: its keys are not copied)."""
    if isinstance(obj, Context):
        _codec.save_context(obj, file, compress, include_secret_key)
    else:
        _codec.write(to_bytes(obj, compress=compress, include_secret_key=include_secret_key), file)


# -- reading ----------------------------------------------------------------------------------


def _read_stream(f: BinaryIO) -> bytes:
    head = f.read(HEADER_BYTES)
    if not isinstance(head, (bytes, bytearray)):
        raise TypeError("load needs a binary file object (opened with 'rb')")
    info = _core.read_header(head)  # raises FormatError on a short or foreign header
    want = int(info["payload_len"])
    parts, got = [bytes(head)], 0
    while got < want:
        chunk = f.read(min(_CHUNK, want - got))
        if not chunk:
            raise FormatError(f"truncated data: the header announces {want} bytes of payload but the stream "
                              f"ended after {got}")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class _Input:
    """The bytes of a source: a bytes-like object as is, a path through mmap
    (no copy of multi-gigabyte keys), a stream read up to the announced length."""

    def __init__(self, source: Any) -> None:
        self._mm = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.data = source
        elif isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise FormatError(f"{os.fspath(source)!r} is empty")
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self.data = self._mm
        elif hasattr(source, "read"):
            self.data = _read_stream(source)
        else:
            raise TypeError(f"load needs bytes, a path or a binary file object, got {type(source).__name__}")

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()


def load(source: Source, context: Any = None, *, unsafe: bool = False, allow_insecure: bool = False,
         map_location: Any = None) -> Any:
    """Load an object written by :func:`save` / :func:`to_bytes`.

    Args:
        source: bytes, a path (memory-mapped) or a binary file object.
        context: the Context that ciphertexts, plaintexts and matrices belong
            to. Default: the live context of this process whose keys (or, for
            plaintexts, parameters) match the object.
        unsafe: skip the checksum and the per-residue range check (metadata
            is still checked). Only for files you wrote yourself.
        allow_insecure: accept a context whose parameters were created with
            ``allow_insecure=True`` (tests only).
        map_location: for an encrypted torch tensor, the torch device
            (``"cpu"``, ``"cuda:0"`` or a ``torch.device``) that ``decrypt``
            puts it on, as in ``torch.load``. Default: the device it was
            encrypted from (its dtype always comes back).

    Returns a Context, CipherTensor, PlainTensor or PlainMatrix (for a
    parameters record, ``ctx.to_bytes(params_only=True)``, the keyword
    arguments of ``Context.from_params``). Raises
    :class:`hetensor.FormatError` when the data is not a valid object for
    ``context``.
    """
    inp = _Input(source)
    try:
        info = _core.read_header(inp.data)
        kind = int(info["type"])
        if kind == _CONTEXT:
            return _load_context(inp.data, unsafe, allow_insecure)
        if kind == _PARAMS:
            return _load_params(inp.data, unsafe)
        ctx = context if context is not None else _find_context(info, kind)
        if kind == _CIPHERTEXT:
            return _load_tensor(ctx, inp.data, unsafe, map_location)
        if kind == _PLAINTEXT:
            return _load_plain(ctx, inp.data, unsafe)
        if kind == _BLOB:
            return _load_matrix(ctx, inp.data, unsafe, int(info["param_hash"]))
        raise FormatError(f"unknown object type {kind}")
    finally:
        inp.close()


def from_bytes(data: Union[bytes, bytearray, memoryview], context: Any = None, *, unsafe: bool = False,
               allow_insecure: bool = False, map_location: Any = None) -> Any:
    """Same as :func:`load` for a bytes-like object."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"from_bytes needs a bytes-like object, got {type(data).__name__}")
    return load(data, context, unsafe=unsafe, allow_insecure=allow_insecure, map_location=map_location)


def _find_context(info: dict, kind: int) -> Any:
    if kind == _CIPHERTEXT:
        ctx = _registry.find(key_id=int(info["key_id"]))
        what = "keys"
    else:
        ctx = _registry.find(param_hash=int(info["param_hash"]))
        what = "parameters"
    if ctx is None:
        raise FormatError(f"no context of this process has the {what} of this object: load its context first "
                          "(hetensor.load on the context file) or pass context=")
    return ctx


def _attrs(raw: bytes) -> dict:
    try:
        d = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"corrupt attributes: {e}") from None
    if not isinstance(d, dict):
        raise FormatError("corrupt attributes: not a mapping")
    return d


def _int_list(v: Any, what: str, limit: int) -> tuple:
    if not isinstance(v, list) or len(v) > 8 or not all(type(x) is int and 0 <= x <= limit for x in v):
        raise FormatError(f"corrupt attributes: {what} must be a list of at most 8 integers in [0, {limit}]")
    return tuple(v)


def _flag(d: dict, key: str) -> bool:
    v = d.get(key, False)
    if not isinstance(v, bool):
        raise FormatError(f"corrupt attributes: {key} must be true or false")
    return v


def _load_context(data: Any, unsafe: bool, allow_insecure: bool) -> Any:
    engine, raw = _core.deserialize_context(data, bool(allow_insecure), bool(unsafe))
    d = _attrs(raw)
    name, fresh, boot = d.get("name"), d.get("fresh_level"), d.get("boot")
    if not isinstance(name, str) or type(fresh) is not int or not 0 <= fresh <= int(engine.max_level):
        raise FormatError("corrupt context attributes: name or fresh level")
    ctx = Context(engine, name)
    if boot is not None:
        if boot not in BOOT_PRESETS:
            raise FormatError(f"corrupt context attributes: unknown bootstrapping preset {boot!r}")
        order = d.get("boot_order", "classic")  # files written before the order was recorded: classic
        if order not in ORDERS:
            raise FormatError(f"corrupt context attributes: unknown bootstrap order {order!r}")
        ctx._attach_bootstrapper(Bootstrapper(ctx, BOOT_PRESETS[boot], order))
        if ctx.fresh_level != fresh:
            raise FormatError("corrupt context attributes: the fresh level differs from the bootstrap output level")
    ctx._fresh_level = fresh
    return ctx


def _load_params(data: Any, unsafe: bool) -> dict:
    lit = _core.deserialize_params(data, bool(unsafe))
    out = {k: getattr(lit, k) for k in ("name", "log_n", "levels", "scale_bits", "first_prime_bits", "dnum",
                                        "special_prime_bits", "special_primes", "hamming_weight", "sigma",
                                        "allow_insecure")}
    if lit.level_bits:
        out["level_bits"] = list(lit.level_bits)
    return out


def _check_context(ctx: Any) -> None:
    if not isinstance(ctx, Context):
        raise TypeError(f"context must be a hetensor.Context, got {type(ctx).__name__}")


def _load_tensor(ctx: Any, data: Any, unsafe: bool, map_location: Any = None) -> Any:
    _check_context(ctx)
    ct, raw = _core.deserialize_ciphertext(ctx._engine, data, bool(unsafe))
    d = _attrs(raw)
    limit = int(ct.batch) * ctx.slots
    shape = _int_list(d.get("shape"), "shape", limit)
    cplx, torch_out = _flag(d, "complex"), _flag(d, "torch")
    layout = None
    if d.get("layout") is not None:
        lay = d["layout"]
        if not isinstance(lay, dict):
            raise FormatError("corrupt attributes: layout")
        try:
            layout = Layout(_int_list(lay.get("matrix"), "layout matrix", limit), int(lay["slots"]),
                            bm=int(lay["bm"]), br=int(lay["br"]), bc=int(lay["bc"]),
                            transposed=bool(lay["transposed"]), clean=bool(lay["clean"]),
                            shape=_int_list(lay.get("shape"), "layout shape", limit))
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"corrupt attributes: layout ({e})") from None
        if layout.slots != ctx.slots or layout.num_ciphertexts != int(ct.batch) or tuple(layout.shape) != shape:
            raise FormatError("corrupt attributes: the layout does not match the ciphertexts")
    else:
        size = 1
        for s in shape:
            size *= s
        if size > limit or (size + ctx.slots - 1) // ctx.slots != int(ct.batch):
            raise FormatError(f"corrupt attributes: shape {shape} does not fit {int(ct.batch)} ciphertexts")
    out = CipherTensor._wrap(ctx, ct, shape, cplx, torch_out, layout)
    out._range = _range(d.get("range"), float(ct.bound))
    out._tmeta = _torch_meta(d.get("torch_dtype"), d.get("torch_device"), map_location)
    return out


def _range(v: Any, bound: float) -> Optional[tuple]:
    """The tracked value range, kept inside [-bound, bound] (the bound is what
    the core enforces; metadata is not authenticated)."""
    if v is None:
        return None
    if (not isinstance(v, list) or len(v) != 2 or not all(isinstance(x, (int, float)) for x in v)
            or not all(np.isfinite(v)) or v[0] > v[1]):
        raise FormatError("corrupt attributes: range must be [lo, hi] with finite lo <= hi")
    lo, hi = float(v[0]), float(v[1])
    if bound > 0:
        lo, hi = max(lo, -bound), min(hi, bound)
        if lo > hi:
            raise FormatError("corrupt attributes: the range lies outside the value bound")
    return (lo, hi)


def _torch_meta(name: Any, device: Any = None, map_location: Any = None) -> Optional[tuple]:
    """(dtype, device) of an encrypted torch tensor from its attributes; ``map_location`` wins."""
    if name is None:
        if map_location is not None:
            _device(map_location, TypeError, "map_location")  # still checked: a typo should not pass silently
        return None
    if not isinstance(name, str) or not name.startswith("torch.") or len(name) > 32:
        raise FormatError("corrupt attributes: torch_dtype")
    try:
        import torch
    except ImportError:
        return None
    dtype = getattr(torch, name[len("torch."):], None)
    if not isinstance(dtype, torch.dtype):
        raise FormatError(f"corrupt attributes: {name} is not a torch dtype")
    if map_location is not None:
        return (dtype, _device(map_location, TypeError, "map_location"))
    if device is None:  # written before devices were recorded
        return (dtype, torch.device("cpu"))
    if not isinstance(device, str) or len(device) > 32:
        raise FormatError("corrupt attributes: torch_device")
    return (dtype, _device(device, FormatError, "corrupt attributes: torch_device"))


def _device(spec: Any, error: type, what: str) -> Any:
    """A torch.device from a string or device (not necessarily present on this machine)."""
    import torch

    if isinstance(spec, torch.device):
        return spec
    if isinstance(spec, str):
        try:
            return torch.device(spec)
        except (RuntimeError, ValueError):
            pass
    raise error(f"{what}: {spec!r} is not a torch device (use 'cpu', 'cuda:0' or a torch.device)")


def _load_plain(ctx: Any, data: Any, unsafe: bool) -> Any:
    _check_context(ctx)
    pt, raw = _core.deserialize_plaintext(ctx._engine, data, bool(unsafe))
    d = _attrs(raw)
    shape = _int_list(d.get("shape"), "shape", int(pt.batch) * ctx.slots)
    purpose = d.get("purpose")
    if purpose not in ("multiply", "add"):
        raise FormatError("corrupt attributes: purpose")
    return PlainTensor._wrap(ctx, pt, shape, purpose, _flag(d, "complex"))


def _load_matrix(ctx: Any, data: Any, unsafe: bool, param_hash: int) -> Any:
    _check_context(ctx)
    if param_hash != int(ctx._engine.params_hash):
        raise FormatError("the matrix was saved with another context's parameters (parameter hash differs)")
    payload = memoryview(_core.deserialize_blob(data, bool(unsafe)))
    if len(payload) < 4:
        raise FormatError("truncated matrix record")
    (n,) = struct.unpack_from("<I", payload, 0)
    if n > min(len(payload) - 4, 1 << 16):
        raise FormatError("corrupt matrix record: metadata length")
    d = _attrs(payload[4:4 + n].tobytes())
    if d.get("kind") != "PlainMatrix" or d.get("dtype") not in ("float64", "complex128"):
        raise FormatError("corrupt matrix record: kind or dtype")
    shape = _int_list(d.get("shape"), "shape", 1 << 31)
    dtype = np.dtype(d["dtype"])
    count = 1
    for s in shape:
        count *= s
    if len(shape) != 2 or count * dtype.itemsize != len(payload) - 4 - n:
        raise FormatError("corrupt matrix record: the shape does not match the data")
    arr = np.frombuffer(payload[4 + n:], dtype=dtype).reshape(shape).copy()
    if not np.all(np.isfinite(arr)):
        raise FormatError("corrupt matrix record: non-finite weights")
    name, cache = d.get("name", ""), d.get("cache", "auto")
    if not isinstance(name, str) or cache not in ("auto", True, False):
        raise FormatError("corrupt matrix record: name or cache")
    return PlainMatrix(ctx, arr, name=name, cache=cache)


# -- pickle support ----------------------------------------------------------------------------


def _restore(data: bytes) -> Any:
    """Unpickling: contexts load (pickle is trusted input by nature), tensors
    bind to the live context with their keys."""
    info = _core.read_header(data)
    if int(info["type"]) == _CONTEXT:
        return load(data, allow_insecure=True)
    return load(data)


_codec.RESTORE = _restore

__all__ = ["FormatError", "from_bytes", "load", "save", "to_bytes"]
