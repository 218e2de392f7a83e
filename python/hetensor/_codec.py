"""Writing hetensor objects in the binary format (the lower half of
:mod:`hetensor.serialize`, which loads). The classes' ``save`` / ``to_bytes``
call into this module, which knows them only by their attributes, so imports
point one way: classes -> _codec, serialize -> classes.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Callable, Optional

import numpy as np

from . import _core

# Set by hetensor.serialize at import: the function that unpickles a record.
RESTORE: Optional[Callable[[bytes], Any]] = None


def reduce(obj: Any) -> tuple:
    """``__reduce__`` through the binary format."""
    if RESTORE is None:  # set when hetensor (hence hetensor.serialize) is imported
        raise RuntimeError("import hetensor before pickling its objects")
    return (RESTORE, (obj.to_bytes(),))


def write(data: bytes, file: Any) -> None:
    """Bytes to a path or a binary file object."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as f:
            f.write(data)
    elif hasattr(file, "write"):
        file.write(data)
    else:
        raise TypeError(f"save needs a path or a binary file object, got {type(file).__name__}")


def tensor_bytes(t: Any, compress: bool) -> bytes:
    ct = t._ct
    if isinstance(ct, _core.DeviceCiphertext):  # the bytes are host memory: the residues come back first
        ct = _core.device_download(ct)
    return bytes(_core.serialize_ciphertext(t._ctx._engine, ct, _tensor_attrs(t), bool(compress)))


def plain_bytes(p: Any) -> bytes:
    attrs = json.dumps({"shape": list(p.shape), "purpose": p._encoding_purpose, "complex": bool(p._complex)})
    return bytes(_core.serialize_plaintext(p._ctx._engine, p._pt, attrs))


def save_context(ctx: Any, file: Any, compress: bool, include_secret_key: bool) -> None:
    """A path is written through a memory map of the file, so the keys
    (gigabytes with bootstrapping) are never copied in memory."""
    if isinstance(file, (str, os.PathLike)):
        attrs, with_secret = _context_record(ctx, include_secret_key)
        _core.save_context_file(ctx._engine, os.fspath(file), attrs, with_secret, bool(compress))
    else:
        write(context_bytes(ctx, compress, include_secret_key), file)


def params_bytes(ctx: Any) -> bytes:
    """The parameters alone (no keys): hetensor.load gives them back as the
    keyword arguments of Context.from_params."""
    return bytes(_core.serialize_params(ctx._engine))


def context_bytes(ctx: Any, compress: bool, include_secret_key: bool) -> bytes:
    attrs, with_secret = _context_record(ctx, include_secret_key)
    return bytes(_core.serialize_context(ctx._engine, attrs, with_secret, bool(compress)))


def _context_record(ctx: Any, include_secret_key: bool) -> tuple:
    if not ctx.is_public and not include_secret_key:
        raise ValueError("this context holds the secret key: share ctx.public().save(...) (evaluation keys only), "
                         "or pass include_secret_key=True to keep your own keys (never share that file)")
    boot, rec = None, {}
    if ctx._bootstrapper is not None:
        boot, rec = ctx.name, {"boot_order": ctx._bootstrapper.order}
    attrs = json.dumps({"name": ctx.name, "fresh_level": ctx.fresh_level, "boot": boot, **rec})
    return attrs, bool(include_secret_key and not ctx.is_public)


def _layout_attrs(layout: Any) -> Optional[dict]:
    if layout is None:
        return None
    return {"matrix": list(layout.matrix), "slots": layout.slots, "bm": layout.bm, "br": layout.br, "bc": layout.bc,
            "transposed": layout.transposed, "clean": layout.clean, "shape": list(layout.shape)}


def _tensor_attrs(t: Any) -> str:
    tmeta = getattr(t, "_tmeta", None)
    rng = getattr(t, "_range", None)
    return json.dumps({"shape": list(t.shape), "complex": bool(t._complex), "torch": bool(t._torch),
                       "layout": _layout_attrs(t._layout),
                       "range": None if rng is None else [float(rng[0]), float(rng[1])],
                       # both come back on load (hetensor.load's map_location overrides the device)
                       "torch_dtype": None if tmeta is None else str(tmeta[0]),
                       "torch_device": None if tmeta is None else str(tmeta[1])})


def matrix_bytes(m: Any) -> bytes:
    arr = np.ascontiguousarray(m.array)
    dtype = "complex128" if np.iscomplexobj(arr) else "float64"
    arr = arr.astype(dtype, copy=False)
    meta = json.dumps({"kind": "PlainMatrix", "shape": list(arr.shape), "dtype": dtype, "name": m.name,
                       "cache": getattr(m, "cache", "auto")}).encode()
    payload = struct.pack("<I", len(meta)) + meta + arr.tobytes()
    return bytes(_core.serialize_blob(int(m.context._engine.params_hash), payload))
