"""hetensor.parallel.map: a batch of ciphertexts over a thread pool gives, in
order, exactly the ciphertexts of the serial run (residues compared bit for
bit), and the right values against float64."""

from __future__ import annotations

import numpy as np
import pytest

from hetensor import parallel

from conftest import bits


def _work(x):
    """ct x ct product (relinearize, rescale), a rotation and a plaintext product."""
    return (x * x).rotate(1) * 0.5 + x.rotate(-1)


def _ref(v):
    return np.roll(v * v, -1) * 0.5 + np.roll(v, 1)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_map_equals_serial_run_bit_for_bit(toy_ctx, rng, workers):
    vs = [rng.uniform(-1, 1, toy_ctx.slots) for _ in range(5)]
    cts = [toy_ctx.encrypt(v) for v in vs]
    serial = [_work(c) for c in cts]
    par = parallel.map(_work, cts, workers=workers)
    assert len(par) == len(serial)
    for p, s, v in zip(par, serial, vs):
        assert np.array_equal(p._ct.limbs(), s._ct.limbs())
        assert bits(toy_ctx.decrypt(p), _ref(v)) >= 25


def test_map_of_nothing_and_plain_values():
    assert parallel.map(abs, [], workers=4) == []
    assert parallel.map(lambda v: v * 2, (1, 2, 3), workers=2) == [2, 4, 6]
    assert parallel.default_workers() >= 1


def test_map_raises_the_first_error_and_checks_arguments():
    def boom(v):
        if v >= 2:
            raise KeyError(v)
        return v

    with pytest.raises(KeyError, match="2"):
        parallel.map(boom, [0, 1, 2, 3], workers=2)
    with pytest.raises(TypeError, match="callable"):
        parallel.map(3, [1])
    with pytest.raises(TypeError, match="sequence"):
        parallel.map(abs, iter([1]))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            parallel.map(abs, [1], workers=bad)
