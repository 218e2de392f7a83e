"""Progress display: tqdm when it is installed and wanted, a silent counter otherwise."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, enabled: bool = True) -> Any:
    """A progress bar over ``total`` steps on stderr (tqdm), or an object with the same methods."""
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        print("(install tqdm for a progress bar: pip install tqdm)", file=sys.stderr)
        return _Silent()
    return tqdm(total=total, file=sys.stderr, unit="op", dynamic_ncols=True, leave=False)
