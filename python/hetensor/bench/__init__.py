"""hetensor's benchmarking suite: ``python -m hetensor.bench --help``.

Modules, one job each: ``cli`` (arguments), ``ops`` (the catalogue),
``hetensor_ops`` (the ops as hetensor runs them), ``peers/`` (one adapter per
peer library), ``timing`` and ``memory`` (statistics, peak memory),
``machine`` (machine facts, NTT peak estimate), ``runner`` (the interleaved
loop), ``report``, ``jsonout``, ``plot``, ``progress``, ``reference`` (the
peers' fixed figures from issue 3). Nothing here imports hetensor's core at
import time, so the package can be inspected anywhere; peers, tqdm and
matplotlib are optional (the ``bench`` extra) and imported only when used.

This package is the one home of the suite; the repository's ``bench/`` folder
holds results (``RESULTS.md``, ``results-*.json``), one-off figure scripts and
the pytest-benchmark files that drive these ops (``bench/README.md``).
"""

from __future__ import annotations

from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line (same as ``python -m hetensor.bench``)."""
    from .cli import main as _main

    return _main(argv)


__all__ = ["main"]
