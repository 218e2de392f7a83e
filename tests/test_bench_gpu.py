"""The GPU mode of the benchmark: kernel records follow the JSON schema and
the CUDA-event timer runs where a GPU is (skipped otherwise); without the CUDA
backend the timer raises the reason."""

from __future__ import annotations

import pytest

from hetensor import _core, cuda
from hetensor.bench import gpu
from hetensor.bench.jsonout import OK_OP_KEYS


def test_chain_primes_are_ntt_friendly():
    ps = gpu.chain_primes(10, 25)
    assert len(ps) == 25 and len(set(ps)) == 21  # 21 sizes, 40 to 60 bits, cycled
    assert all(p % 2048 == 1 and _core.is_prime(p) and 2**39 < p < 2**60 for p in ps)
    assert gpu.device_index("cuda") == 0 and gpu.device_index("cuda:3") == 3


@pytest.mark.skipif(cuda.is_compiled(), reason="the CUDA backend is compiled in")
def test_kernel_timer_without_backend_says_how_to_rebuild():
    with pytest.raises(RuntimeError, match="HETENSOR_CUDA=ON"):
        gpu.kernel_run("cuda:0", "toy-insecure", ["add"], 2)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda.is_available(), reason="no usable CUDA device")
def test_kernel_run_records():
    run = gpu.kernel_run("cuda:0", "toy-insecure", ["multiply"], 3)
    res = run["results"]["hetensor"]
    assert res["multiply"]["status"] == "unavailable"
    for name in gpu.KERNELS:
        rec = res[f"kernel_{name}"]
        assert set(OK_OP_KEYS) <= set(rec) and rec["median"] > 0
