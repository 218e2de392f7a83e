"""Polynomial evaluation (cpp/circuits/polyeval) on device-resident ciphertexts.

The evaluator's plan is written once over the ciphertext type; on a
DeviceCiphertext its small kernels (scalar multiply-adds, constants, tensor
products) are backend calls, so the result and the operation counts must equal
the host's word for word; each case also decrypts against float64. "cpu" puts
the residues in the CPU backend's memory; "cuda:0" runs the same cases where a
GPU is present and skips cleanly elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core

from conftest import DEVICES, bits, resident

STATS = ("ct_products", "relinearizations", "rescales", "scalar_products", "powers", "baby_step", "levels")


def _same(host, dev, device: str) -> None:
    assert isinstance(dev, _core.DeviceCiphertext) and dev.device == device
    back = _core.device_download(dev)
    assert (back.level, back.scale, back.size, back.bound) == (host.level, host.scale, host.size, host.bound)
    assert np.array_equal(back.limbs(), host.limbs())


def _cheb(f, a, b, degree):
    return ht.approx.chebyshev(f, a, b, degree)


@pytest.mark.parametrize("device", DEVICES)
def test_polynomials_match_the_host(toy_ctx, rng, device):
    eng = toy_ctx._engine
    cases = [
        ("tanh degree 7 on [-1, 1] (free change of variable)", _cheb(np.tanh, -1, 1, 7), (-1, 1)),
        ("exp degree 12 on [-8, 0] (one level for the change of variable)", _cheb(np.exp, -8, 0, 12), (-8, 0)),
        ("x^2 - x (degree 2)", _cheb(lambda v: v * v - v, -1, 1, 2), (-1, 1)),
        ("degree 1", _cheb(lambda v: 0.5 * v + 0.25, -1, 1, 1), (-1, 1)),
    ]
    for name, p, (a, b) in cases:
        x = rng.uniform(a, b, (2, toy_ctx.slots))
        X = toy_ctx.encrypt(x)
        hc, hs = _core.eval_chebyshev(eng, X._ct, p._core_poly())
        dc, ds = _core.eval_chebyshev(eng, resident(X, device)._ct, p._core_poly())
        _same(hc, dc, device)
        assert [getattr(ds, k) for k in STATS] == [getattr(hs, k) for k in STATS], name
        assert bits(toy_ctx.decrypt(X._like(dc)), p(x)) >= 16, name


@pytest.mark.parametrize("device", DEVICES)
def test_size3_input_output_scale_power_basis_and_constants(toy_ctx, rng, device):
    eng = toy_ctx._engine
    x = rng.uniform(-1, 1, toy_ctx.slots)
    X = toy_ctx.encrypt(x)
    dX = resident(X, device)
    p = _cheb(np.sin, -1, 1, 9)
    # A size-3 input (a product not yet relinearized): relinearized first, as on the host.
    h3, d3 = eng.multiply_no_relin(X._ct, X._ct), eng.multiply_no_relin(dX._ct, dX._ct)
    hc, _ = _core.eval_chebyshev(eng, h3, p._core_poly())
    dc, _ = _core.eval_chebyshev(eng, d3, p._core_poly())
    _same(hc, dc, device)
    # A chosen output scale (twice the canonical one of the output level).
    target = toy_ctx.scale_at(X.level - p.depth) * 2.0
    hc, _ = _core.eval_chebyshev(eng, X._ct, p._core_poly(), target)
    dc, _ = _core.eval_chebyshev(eng, dX._ct, p._core_poly(), target)
    _same(hc, dc, device)
    assert dc.scale == target and dc.level == X.level - p.depth
    assert bits(toy_ctx.decrypt(X._like(dc)), p(x)) >= 20
    coeffs = [0.125, -0.5, 0.0, 0.75]  # power basis
    hc, hs = _core.eval_power(eng, X._ct, coeffs)
    dc, ds = _core.eval_power(eng, dX._ct, coeffs)
    _same(hc, dc, device)
    assert bits(toy_ctx.decrypt(X._like(dc)), np.polynomial.polynomial.polyval(x, coeffs)) >= 18
    # A constant polynomial: no level, the constant in every slot.
    hc, _ = _core.eval_power(eng, X._ct, [0.375])
    dc, _ = _core.eval_power(eng, dX._ct, [0.375])
    _same(hc, dc, device)
    assert bits(toy_ctx.decrypt(X._like(dc)), np.full(x.shape, 0.375)) >= 20


@pytest.mark.parametrize("device", DEVICES)
def test_polyval_and_composites_run_resident(toy_ctx, rng, device):
    x = rng.uniform(0.5, 2.0, 64)
    X = toy_ctx.encrypt(x)
    dX = resident(X, device)
    for ap in (ht.approx.inv_sqrt(0.5, 2.0, 15), _cheb(np.tanh, 0.5, 2.0, 7)):
        h, d = X.polyval(ap), dX.polyval(ap)
        assert str(d.device) == device
        _same(h._ct, d._ct, device)
        assert bits(toy_ctx.decrypt(d), ap(x)) >= 14


@pytest.mark.parametrize("device", DEVICES)
def test_resident_polynomials_refuse_bad_input(toy_ctx, other_ctx, rng, device):
    eng = toy_ctx._engine
    X = resident(toy_ctx.encrypt(rng.uniform(-1, 1, 16)), device)
    deep = _cheb(np.tanh, -1, 1, 31)  # 5 levels
    with pytest.raises(ValueError, match="needs 5 levels"):
        _core.eval_chebyshev(eng, X.level_to(3)._ct, deep._core_poly())
    with pytest.raises(ValueError, match="another context"):
        _core.eval_chebyshev(eng, _core.device_upload(other_ctx.encrypt(np.ones(4))._ct, device), deep._core_poly())
    with pytest.raises(ValueError, match="no coefficients"):
        _core.eval_power(eng, X._ct, [])
    with pytest.raises(ValueError, match="not finite"):
        _core.eval_power(eng, X._ct, [1.0, float("nan")])
