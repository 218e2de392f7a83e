"""Peak resident memory of the process around one benchmarked op.

On Linux the kernel keeps a high-water mark of the resident set (VmHWM in
/proc/self/status) that writing ``5`` to /proc/self/clear_refs resets, so the
peak of each op is measured on its own, C/C++/Go allocations included (which
tracemalloc cannot see). Elsewhere the lifetime peak from getrusage is used.
"""

from __future__ import annotations

import resource
import sys
from typing import Dict, Optional


def _status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", "r", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager: ``peak_bytes`` (process high-water) and ``delta_bytes`` (peak - start)."""

    def __init__(self) -> None:
        self.method = "unknown"
        self.start_bytes = 0
        self.peak_bytes = 0

    def __enter__(self) -> "PeakMemory":
        rss = _status_kib("VmRSS")
        if rss is not None and _reset_hwm():
            self.method = "VmHWM after clear_refs (per op)"
            self.start_bytes = rss * 1024
        else:
            self.method = "ru_maxrss (process lifetime)"
            self.start_bytes = current_rss_bytes()
        return self

    def __exit__(self, *exc) -> None:
        hwm = _status_kib("VmHWM") if self.method.startswith("VmHWM") else None
        if hwm is not None:
            self.peak_bytes = hwm * 1024
        else:
            self.peak_bytes = _maxrss_bytes()

    @property
    def delta_bytes(self) -> int:
        """Extra resident memory at the peak, relative to the start."""
        return max(0, self.peak_bytes - self.start_bytes)

    def as_dict(self) -> Dict[str, int]:
        """The figures that go into the JSON record of an op."""
        return {"peak_rss_bytes": int(self.peak_bytes), "peak_delta_bytes": int(self.delta_bytes)}


def _maxrss_bytes() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib) * (1 if sys.platform == "darwin" else 1024)


def current_rss_bytes() -> int:
    """Resident set size now (falls back to the lifetime peak off Linux)."""
    rss = _status_kib("VmRSS")
    return rss * 1024 if rss is not None else _maxrss_bytes()
