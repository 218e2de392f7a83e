"""hetensor's benchmarking suite: ``python -m hetensor.bench --help``.

Modules, one job each: ``cli`` (arguments), ``ops`` (the catalogue),
``hetensor_ops`` (the ops as hetensor runs them), ``peers/`` (one adapter per
peer library), ``timing`` and ``memory`` (statistics, peak memory),
``machine`` (machine facts, NTT peak estimate), ``runner`` (the interleaved
loop), ``report``, ``jsonout``, ``plot``, ``progress``, ``reference`` (the
peers' fixed figures from issue 3). Nothing here imports hetensor's core at
import time, so the package can be inspected anywhere.
"""

from __future__ import annotations

from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line (same as ``python -m hetensor.bench``)."""
    from .cli import main as _main

    return _main(argv)


__all__ = ["main"]
