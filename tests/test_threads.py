"""Thread count and concurrency: results do not depend on the number of core
threads, and Python threads running operations concurrently on shared keys
(the GIL is released) match serial execution (checklist G21)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

# Two runs of the same deterministic computation on the same ciphertexts may
# differ only by floating-point decoding; anything below 2^-40 is equal here.
SAME_BITS = 40


def _pipeline(ctx, cx, cy, y):
    """A mix of every kind of kernel: ct*ct, plaintext product, rotation, hoisting."""
    prod = cx * cy
    t = prod * y + cx.rotate(1)
    h = t.rotate_many([1, 3, -1])
    return [prod, t] + h


def _reference(x, y):
    """numpy version of _pipeline on one full slot vector."""
    prod = x * y
    t = prod * y + np.roll(x, -1)
    return [prod, t, np.roll(t, -1), np.roll(t, -3), np.roll(t, 1)]


def test_set_and_get_num_threads(restore_threads):
    ht.set_num_threads(1)
    assert ht.get_num_threads() == 1
    ht.set_num_threads(2)
    assert ht.get_num_threads() in (1, 2)  # 1 when built without OpenMP


def test_results_do_not_depend_on_thread_count(toy_ctx, rng, restore_threads):
    size = 2 * toy_ctx.slots  # a batch of two ciphertexts, so batch loops run too
    x, y = rng.uniform(-1, 1, size), rng.uniform(-1, 1, size)
    cx, cy = toy_ctx.encrypt(x), toy_ctx.encrypt(y)
    outs = {}
    for threads in (1, 2, 1):
        ht.set_num_threads(threads)
        outs.setdefault(threads, []).append([toy_ctx.decrypt(c) for c in _pipeline(toy_ctx, cx, cy, y)])
    one, two, one_again = outs[1][0], outs[2][0], outs[1][1]
    for a, b, c in zip(one, two, one_again):
        assert bits(a, b) >= SAME_BITS
        assert bits(a, c) >= SAME_BITS
    # and they are right: first ciphertext of the batch against numpy
    xs, ys = x[: toy_ctx.slots], y[: toy_ctx.slots]
    for got, r in zip(two, _reference(xs, ys)):
        assert bits(got[: toy_ctx.slots], r) >= 20


def test_encryption_and_keygen_with_one_thread(restore_threads):
    ht.set_num_threads(1)
    ctx = ht.Context.from_params(log_n=11, levels=2, allow_insecure=True, seed=8, rotations=[2])
    x = np.linspace(-1, 1, ctx.slots)
    cx = ctx.encrypt(x)
    assert bits(ctx.decrypt((cx * cx).rotate(2)), np.roll(x * x, -2)) >= 20


def test_concurrent_multiplies_match_serial(toy_ctx, rng):
    pairs = [(rng.uniform(-1, 1, 300), rng.uniform(-1, 1, 300)) for _ in range(8)]
    cts = [(toy_ctx.encrypt(a), toy_ctx.encrypt(b)) for a, b in pairs]

    def work(i):
        ca, cb = cts[i]
        return toy_ctx.decrypt((ca * cb).rotate(3) + ca)

    serial = [work(i) for i in range(len(cts))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(work, range(len(cts))))
    for (a, b), s, c in zip(pairs, serial, concurrent):
        assert bits(c, s) >= SAME_BITS
        ref = np.roll(np.pad(a * b, (0, toy_ctx.slots - 300)), -3)[:300] + a
        assert bits(c, ref) >= 20


def test_concurrent_mixed_operations_on_one_shared_ciphertext(toy_ctx, rng):
    x = rng.uniform(-1, 1, toy_ctx.slots)
    cx = toy_ctx.encrypt(x)
    ops = [
        (lambda: cx * cx, x * x),
        (lambda: cx.rotate(7), np.roll(x, -7)),
        (lambda: cx * 0.5 + 1.0, x * 0.5 + 1.0),
        (lambda: cx.rotate_many([1, 2])[1], np.roll(x, -2)),
        (lambda: cx.level_to(1) - cx, np.zeros_like(x)),
        (lambda: cx**3, x**3),
    ] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(op) for op, _ in ops]
        results = [toy_ctx.decrypt(f.result()) for f in futures]
    for (_, ref), got in zip(ops, results):
        assert bits(got, ref) >= 20
    # the shared input is untouched
    assert bits(toy_ctx.decrypt(cx), x) >= 22


def test_concurrent_encryptions_are_correct_and_distinct(toy_ctx, rng):
    x = rng.uniform(-1, 1, 128)
    with ThreadPoolExecutor(max_workers=4) as pool:
        cts = list(pool.map(lambda i: toy_ctx.encrypt(x, symmetric=bool(i % 2)), range(12)))
    decs = [toy_ctx.decrypt(c) for c in cts]
    for d in decs:
        assert bits(d, x) >= 22
    # randomness is not shared between threads: no two encryptions are equal
    for i in range(len(decs)):
        for j in range(i + 1, len(decs)):
            assert not np.array_equal(decs[i], decs[j]), (i, j)


def test_concurrent_key_generation(small_ctx, rng):
    steps = [1, 2, 3, 4, 5, -1, -2, 9]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda s: small_ctx.generate_rotation_keys([s]), steps))
    slots = small_ctx.slots
    assert sorted(small_ctx.rotation_steps) == sorted({s % slots for s in steps})
    x = rng.uniform(-1, 1, slots)
    cx = small_ctx.encrypt(x)
    for s, r in zip(steps, cx.rotate_many(steps)):
        assert bits(small_ctx.decrypt(r), np.roll(x, -s)) >= 21


@pytest.mark.parametrize("workers", [2, 8])
def test_thread_pool_stress_against_serial(toy_ctx, rng, workers):
    xs = [rng.uniform(-1, 1, 50) for _ in range(16)]
    cts = [toy_ctx.encrypt(x) for x in xs]

    def job(i):
        c = cts[i] * cts[(i + 1) % len(cts)]
        return toy_ctx.decrypt(c.square() - cts[i])

    serial = [job(i) for i in range(len(cts))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        par = list(pool.map(job, range(len(cts))))
    for i, (s, p) in enumerate(zip(serial, par)):
        ref = (xs[i] * xs[(i + 1) % len(xs)]) ** 2 - xs[i]
        assert bits(p, s) >= SAME_BITS
        assert bits(p, ref) >= 20
