"""The CUDA backend as seen from Python: is it built, which devices exist.

``device="cuda:N"`` arguments (``Context.from_preset``, ``CipherTensor.to``)
are parsed here. A ciphertext moved to a GPU lives in that device's memory
pool and the backend runs its operations there (arithmetic, rotations,
polynomials, bootstrapping, the matrix products). A CUDA
device is refused with the reason where no CUDA backend was compiled or no
such GPU exists.
"""

from __future__ import annotations

import re
from typing import Any

from . import _core

_CUDA = re.compile(r"cuda(?::(\d+))?\Z")


def is_compiled() -> bool:
    """True when this build contains the CUDA backend (``-Ccmake.define.HETENSOR_CUDA=ON``)."""
    return bool(_core.cuda_compiled)


def is_available() -> bool:
    """True when the CUDA backend is compiled in and a usable GPU is present."""
    return bool(_core.cuda_available())


def device_count() -> int:
    """The number of CUDA devices the driver reports (0 without the backend or a driver)."""
    return int(_core.cuda_device_count())


def device_name(index: int = 0) -> str:
    """The name of CUDA device ``index``; RuntimeError without the backend, IndexError for a bad index."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"device index must be an integer, got {index!r}")
    return str(_core.cuda_device_name(index))


def parse_device(device: Any) -> str:
    """The canonical name of a device argument: ``"cpu"`` or ``"cuda:N"``.

    Accepts ``"cpu"``, ``"cuda"`` (device 0), ``"cuda:N"`` and ``torch.device``
    objects. A CUDA device raises RuntimeError when the backend is not
    compiled or no such GPU exists.
    """
    name = str(device) if type(device).__name__ == "device" else device
    if not isinstance(name, str):
        raise TypeError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    name = name.strip().lower()
    if name == "cpu":
        return "cpu"
    m = _CUDA.match(name)
    if m is None:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")
    index = int(m.group(1) or 0)
    if not is_compiled():
        raise RuntimeError(f"device {name!r}: this hetensor was built without the CUDA backend; reinstall with "
                           "-Ccmake.define.HETENSOR_CUDA=ON on a machine with the CUDA toolkit, or use device='cpu'")
    count = device_count()
    if index >= count or not is_available():
        raise RuntimeError(f"device {name!r}: no such usable CUDA device (the driver reports {count}); "
                           "use device='cpu'")
    return f"cuda:{index}"
