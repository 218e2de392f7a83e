"""The GPU mode of the benchmark (``--device cuda:N``): per-kernel times of the
CUDA backend, measured with CUDA events on the backend's stream with the data
resident on the device (``hetensor._core.cuda_kernel_times``), over the limbs
of each preset's full chain; ``kernel_key_switch`` is one whole fused rotation
key switch (one digit, the last prime as P). Whole CKKS ops (multiply, rotate, bootstrap) are
recorded as unavailable, with the reason, until ciphertexts are resident on
the GPU; the records follow the JSON schema of the CPU runs (unit "s").
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List

from .spec import preset_spec

KERNELS = ("ntt_forward", "ntt_inverse", "add", "mul", "automorphism", "basis_convert", "key_switch_dot",
           "sub_mul_const", "key_switch")
WHOLE_OPS_REASON = ("ciphertexts are computed by the CPU backend in this version; the CUDA backend times its "
                    "kernels only (kernel_* rows)")


def device_index(device: str) -> int:
    """N of ``cuda:N`` (0 for ``cuda``)."""
    return int(device.split(":", 1)[1]) if ":" in device else 0


def chain_primes(log_n: int, limbs: int) -> List[int]:
    """``limbs`` NTT-friendly primes of 40 to 60 bits for N = 2^log_n (kernel times do not
    depend on the primes' values: every residue is a 64-bit word)."""
    from hetensor import _core

    n = 1 << log_n
    sizes = itertools.cycle(range(60, 39, -1))
    return [int(_core.ntt_prime(next(sizes), n)) for _ in range(limbs)]


def kernel_run(device: str, preset: str, ops: List[str], repeat: int) -> Dict[str, Any]:
    """One run record: ``kernel_<name>`` results from CUDA events, the requested whole ops unavailable."""
    from hetensor import _core

    spec = preset_spec(preset)
    limbs = spec.levels + 1
    times = _core.cuda_kernel_times(chain_primes(spec.log_n, limbs), spec.log_n, repeat, device_index(device))
    results: Dict[str, Any] = {op: {"status": "unavailable", "reason": WHOLE_OPS_REASON} for op in ops}
    for name in KERNELS:
        if name not in times:  # key_switch: only when the chain's digit fits the kernels (<= 64 primes)
            continue
        s = float(times[name]) / 1e3
        results[f"kernel_{name}"] = {
            "status": "ok", "unit": "s", "median": s, "min": s, "max": s, "mean": s, "repeat": repeat, "warmup": 1,
            "samples": [s], "peak_rss_bytes": None,
            "note": f"CUDA events, mean of {repeat} launches over {limbs} limbs of N = 2^{spec.log_n}"}
    return {"device": device, "preset": preset, "threads": 1,
            "params": {"hetensor": {"ring_degree": 1 << spec.log_n, "limbs": limbs, "timing": "cuda-events"}},
            "results": {"hetensor": results}, "metrics": {}, "ratios": {}}
