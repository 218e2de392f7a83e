"""Conversion of user inputs (numpy, torch, lists, scalars) to slot rows."""

from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np


def is_torch_tensor(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch when it is absent."""
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy")


def to_numpy(x: Any, what: str = "input") -> np.ndarray:
    """A float64 or complex128 array of `x`; TypeError for non-numeric data."""
    if is_torch_tensor(x):
        x = x.detach().cpu()
        if x.is_complex():
            x = x.to(dtype=__import__("torch").complex128)
        else:
            x = x.to(dtype=__import__("torch").float64)
        arr = x.numpy()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"cannot convert the {what} to an array: {exc}") from None
    if arr.dtype.kind in "biuf":
        arr = arr.astype(np.float64, copy=False)
    elif arr.dtype.kind == "c":
        arr = arr.astype(np.complex128, copy=False)
    else:
        raise TypeError(
            f"the {what} has dtype {arr.dtype}; hetensor encrypts real or complex numbers "
            "(numpy/torch float or complex arrays, lists of floats)"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the {what} contains NaN or Inf; CKKS encodes finite values only")
    return arr


def to_rows(flat: np.ndarray, slots: int) -> Tuple[np.ndarray, int]:
    """Zero-pads a flat array to whole rows of `slots` values (complex128)."""
    count = max(1, math.ceil(flat.size / slots))
    rows = np.zeros(count * slots, dtype=np.complex128)
    rows[: flat.size] = flat
    return rows.reshape(count, slots), count
