"""What machine a run was on, and the estimated peak NTT rate it is compared with."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, List, Optional

#: Modular butterflies per cycle per core that the peak estimate assumes.
BUTTERFLIES_PER_CYCLE_SCALAR = 0.5
BUTTERFLIES_PER_CYCLE_IFMA = 4.0

PEAK_MODEL = (
    "peak butterflies/s = threads x clock x B. B = 0.5 on x86-64 without AVX-512 IFMA: a "
    "Harvey butterfly with a Shoup constant needs two 64x64-bit multiplies (the high word of "
    "w'*b and the low word of q*hi), and one core issues one 64x64->128-bit multiply per cycle; "
    "AVX2 has no 64-bit high multiply, so it does not raise this bound. B = 4 with AVX-512 IFMA "
    "(8 lanes of 52-bit multiply-add, two per butterfly). Clock: the nominal 'cpu MHz' of "
    "/proc/cpuinfo (no turbo). An upper bound for the arithmetic alone; loads, stores and the "
    "Python call are not counted."
)

_FLAGS_OF_INTEREST = ("avx2", "bmi2", "adx", "avx512f", "avx512dq", "avx512ifma", "avx512vl", "fma")


def _cpuinfo() -> Dict[str, str]:
    info: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


def _mem_total_bytes() -> Optional[int]:
    try:
        with open("/proc/meminfo", "r", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_flags() -> List[str]:
    """The SIMD / multiply flags that matter for NTT speed, as the OS reports them."""
    flags = set(_cpuinfo().get("flags", "").split())
    return [f for f in _FLAGS_OF_INTEREST if f in flags]


def clock_hz() -> Optional[float]:
    """Nominal clock of the first CPU in Hz, or None when it cannot be read."""
    for path in ("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency",
                 "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"):
        try:
            with open(path, "r", encoding="ascii") as fh:
                return float(fh.read().strip()) * 1e3  # kHz
        except (OSError, ValueError):
            continue
    mhz = _cpuinfo().get("cpu MHz")
    try:
        return float(mhz) * 1e6 if mhz else None
    except ValueError:
        return None


def peak_butterflies_per_s(threads: int) -> Optional[float]:
    """Estimated machine peak of modular butterflies per second with ``threads`` cores (see PEAK_MODEL)."""
    hz = clock_hz()
    if hz is None:
        return None
    per_cycle = BUTTERFLIES_PER_CYCLE_IFMA if "avx512ifma" in cpu_flags() else BUTTERFLIES_PER_CYCLE_SCALAR
    return min(threads, _usable_cpus()) * hz * per_cycle


def machine_info() -> Dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions, for the JSON record."""
    import numpy

    info = _cpuinfo()
    hz = clock_hz()
    out: Dict[str, Any] = {
        "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_vendor": info.get("vendor_id", ""),
        "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
        "cpu_flags": cpu_flags(),
        "clock_mhz": round(hz / 1e6, 1) if hz else None,
        "cores_logical": os.cpu_count() or 1,
        "cores_usable": _usable_cpus(),
        "memory_bytes": _mem_total_bytes(),
        "architecture": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "ntt_peak_model": PEAK_MODEL,
    }
    try:
        import hetensor

        out["hetensor_version"] = hetensor.__version__
        out["hetensor_cuda_available"] = bool(hetensor.cuda_available())
        out["hetensor_max_threads"] = int(hetensor.get_num_threads())
    except Exception as exc:  # the report still describes the machine
        out["hetensor_version"] = f"unavailable: {exc}"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE"):
        if var in os.environ:
            out.setdefault("environment", {})[var] = os.environ[var]
    return out
