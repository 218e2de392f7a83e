"""The native layer on bad arguments and under concurrency (issue 13): the
low-level test bindings raise Python exceptions instead of SIGFPE, hangs or
giant allocations (run in child processes, where a crash cannot take the
suite down); set_num_threads refuses non-integers and clamps; encapsulation
keys cannot change under a running bootstrap."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

BAD_CALLS = [
    ("c.ntt_prime(64, 1024)", "bits"),            # hung in the prime search
    ("c.ntt_prime(30, 0)", "power of two"),       # SIGFPE
    ("c.ntt_prime(30, 1000)", "power of two"),
    ("c.ntt_prime(-5, 1024)", "bits"),
    ("c.primitive_2n_root(97, 0)", "power of two"),  # SIGFPE
    ("c.primitive_2n_root(2**62 + 1, 8)", "prime"),
    ("c.bit_reverse(5, 100)", "bits"),
    ("c.bit_reverse(8, 3)", "bits"),
    ("c.chebyshev_interpolate(lambda x: x, -1, 1, 10**6)", "degree"),      # hung (O(d^2))
    ("c.chebyshev_interpolate(lambda x: x, -1, 1, 2**31 - 1)", "degree"),  # giant allocation
    ("c.linalg_zeros(e._engine, e.encrypt([1.0])._ct, -1)", "count"),      # giant allocation
    ("c.linalg_zeros(e._engine, e.encrypt([1.0])._ct, 2**31 - 1)", "count"),
    ("c.ntt_forward(np.zeros(1000, np.uint64), c.ntt_prime(30, 1024))", ""),
    ("c.set_num_threads(0)", "positive"),
]


@pytest.mark.parametrize("call,words", BAD_CALLS)
def test_bad_arguments_raise_in_a_child_process(call, words):
    code = ("import numpy as np, hetensor as ht\nc = ht._core\n"
            "e = ht.Context.from_params(log_n=10, levels=1, allow_insecure=True, seed=1)\n"
            f"try:\n    {call}\nexcept (ValueError, TypeError) as err:\n    print('raised:', err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{call}: exit {out.returncode}\n{out.stderr[-2000:]}"
    assert "raised:" in out.stdout and words in out.stdout, out.stdout


def test_set_num_threads_refuses_non_integers_and_clamps():
    before = ht.get_num_threads()
    try:
        for bad in (2.5, "4", None, True):
            with pytest.raises(TypeError):
                ht.set_num_threads(bad)
        for bad in (0, -3):
            with pytest.raises(ValueError):
                ht.set_num_threads(bad)
        assert ht.set_num_threads(10000) == ht.max_num_threads() == ht.get_num_threads()
        assert ht.max_num_threads() <= 1024
        assert ht.set_num_threads(1) == 1 == ht.get_num_threads()
    finally:
        ht.set_num_threads(before)


def test_set_num_threads_10000_in_a_child_process():
    # 10000 threads killed the process through libgomp before the clamp.
    code = ("import numpy as np, hetensor as ht\nht.set_num_threads(10000)\n"
            "ctx = ht.Context.from_params(log_n=10, levels=1, allow_insecure=True, seed=1)\n"
            "x = np.linspace(-1, 1, 8)\nprint(float(np.max(np.abs(ctx.decrypt(ctx.encrypt(x) * 2) - 2 * x))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 1e-6


def test_encapsulation_keys_cannot_change_under_running_bootstraps():
    """15 of 34 bootstraps came out wrong when another thread regenerated the
    encapsulation keys. Keys are now made once: the same weight is a no-op,
    another weight is refused, and every bootstrap stays correct."""
    ctx = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=31)
    h = ctx._bootstrapper.params.encapsulation_h
    x = np.linspace(-1, 1, 64)
    ct = ctx.encrypt(x).level_to(ctx.bootstrap_contract.input_level)
    results, errors = [], []
    stop = threading.Event()

    def boot():
        for _ in range(3):
            results.append(ctx.decrypt(ctx.bootstrap(ct)))

    def regenerate():
        while not stop.is_set():
            ht._core.generate_encapsulation_keys(ctx._engine, h)
            try:
                ht._core.generate_encapsulation_keys(ctx._engine, h + 1)
            except ValueError as e:
                errors.append(str(e))

    workers = [threading.Thread(target=boot) for _ in range(2)]
    noisy = threading.Thread(target=regenerate)
    noisy.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    noisy.join()
    assert len(results) == 6 and errors and "never change" in errors[0]
    for r in results:
        assert bits(r, x) > 20
