"""hetensor: CKKS homomorphic encryption with encrypted tensors.

>>> import numpy as np, hetensor
>>> ctx = hetensor.Context.from_preset("toy-insecure", rotations=[1])
>>> x = ctx.encrypt(np.linspace(-1, 1, 8))
>>> y = (x * x + 0.5).rotate(1)
>>> ctx.decrypt(y)[:7]  # doctest: +SKIP
"""

import os as _os

# OpenMP threads sleep at barriers instead of spinning: on a shared or
# oversubscribed machine spinning made two threads several times slower than
# one. Set OMP_WAIT_POLICY=ACTIVE before importing for the lowest latency on
# an idle machine.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import _core  # noqa: E402
from . import approx  # noqa: E402  (hetensor.approx.exp(...) works after `import hetensor`)
from . import cuda, distributed, memory, parallel  # noqa: E402
from .context import RELEASE_FLOOD_BITS, Context, presets  # noqa: E402
from .errors import FormatError, MissingKeyError, SecurityError  # noqa: E402
from .layout import Layout
from .linalg import MatmulCost, PlainMatrix
from .plain import PlainTensor  # noqa: E402
from .serialize import from_bytes, load, save, to_bytes  # noqa: E402
from .shaping import cat, stack  # noqa: E402
from .tensor import CipherTensor  # noqa: E402

__version__ = "0.1.0"


def set_num_threads(threads: int) -> int:
    """Set how many CPU threads the core uses (like ``OMP_NUM_THREADS``).

    ``threads`` must be a positive integer; it is clamped to
    :func:`max_num_threads` (4 per processor). Returns the count in use.
    """
    import numbers

    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"set_num_threads needs an integer, got {threads!r}")
    if threads < 1:
        raise ValueError(f"set_num_threads needs a positive thread count, got {threads}")
    return int(_core.set_num_threads(min(int(threads), int(_core.max_num_threads()))))


def max_num_threads() -> int:
    """The most threads :func:`set_num_threads` will use (4 per processor)."""
    return int(_core.max_num_threads())


def get_num_threads() -> int:
    """Number of CPU threads the core uses."""
    return int(_core.get_num_threads())


def cuda_available() -> bool:
    """True when the CUDA backend was compiled in and a GPU is present."""
    return bool(_core.cuda_available())


__all__ = [
    "RELEASE_FLOOD_BITS",
    "CipherTensor",
    "Context",
    "FormatError",
    "Layout",
    "MatmulCost",
    "MissingKeyError",
    "PlainMatrix",
    "PlainTensor",
    "SecurityError",
    "approx",
    "cuda",
    "distributed",
    "parallel",
    "cat",
    "cuda_available",
    "from_bytes",
    "load",
    "get_num_threads",
    "max_num_threads",
    "memory",
    "presets",
    "save",
    "set_num_threads",
    "stack",
    "to_bytes",
]
