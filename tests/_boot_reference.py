"""The bootstrap as hetensor/boot.py sequenced it op by op from Python before
the circuit moved into one C++ call (boot/bootstrapper): the same primitives
(_core.mod_raise, apply_linear_transform, eval_chebyshev, ...) in the same
order with the same arguments, read from the planner (hetensor.boot.Bootstrapper).
tests/test_boot_executor.py checks the C++ executor against it word for word.
Test-only: the library has one code path, the executor."""

from __future__ import annotations

import math

from hetensor import _core
from hetensor.boot import _even_shift_and_span


def _eval_mod(boot, ct, half=False, out_scale=None, even=False):
    eng = boot.ctx._engine
    if even and boot.even_poly is not None:
        c, span = _even_shift_and_span(boot.params)
        u = eng.add_scalar(ct.with_scale(ct.scale * span, float(ct.bound) / span), -c / span)
        z = eng.add_scalar(eng.mul_scalar(eng.square(u), 2.0), -1.0)
        y, _ = _core.eval_chebyshev(eng, z, boot.even_poly)
    else:
        y, _ = _core.eval_chebyshev(eng, ct, boot.poly)
    r = boot.params.double_angles
    for k in range(r):
        if half and k == r - 1 and not boot.params.arcsine_degree:
            y = eng.add_scalar(eng.square(y), -0.5)
        else:
            y = eng.add_scalar(eng.mul_scalar(eng.square(y), 2.0), -1.0)
    if boot.params.arcsine_degree:
        poly = boot.arcsine_half if half else boot.arcsine_poly
        y, _ = _core.eval_chebyshev(eng, y, poly, boot.eval_mod_scale if out_scale is None else out_scale)
    return y


def _to_level0(boot, ct, multiplier=None):
    eng = boot.ctx._engine
    multiplier = boot.premultiplier if multiplier is None else multiplier
    if ct.level > 0:
        ct = eng.level_to(ct, 0)
    assert abs(ct.scale / boot.ctx.scale_at(0) - 1) <= 1e-9
    if multiplier > 1:
        ct = eng.mul_scalar(ct, float(multiplier))
    return ct


def _real_pair(boot, a, b):
    eng = boot.ctx._engine
    ib = _core.mul_by_i(eng, b, False)
    return eng.add(eng.add(a, ib), eng.conjugate(eng.sub(a, ib)))


def _to_coefficients(boot, ct, bound, multiplier=None):
    eng = boot.ctx._engine
    lv = boot.params.stc_levels
    assert ct.level >= lv
    if ct.level > lv:
        ct = eng.level_to(ct, lv)
    for lt in boot.stc_low():
        ct = _core.apply_linear_transform(eng, ct, lt).with_scale(boot.ctx.scale_at(lt.level - 1), bound)
    multiplier = boot.early_premultiplier if multiplier is None else multiplier
    if multiplier > 1:
        ct = eng.mul_scalar(ct, float(multiplier))
    return ct


def _refresh(boot, ct, half, early=False, real_values=False):
    eng = boot.ctx._engine
    if boot.params.encapsulation_h:
        raised = _core.switch_to_dense(eng, _core.mod_raise(eng, _core.switch_to_sparse(eng, ct)))
    else:
        raised = _core.mod_raise(eng, ct)
    a = raised.with_scale(boot.input_scale / boot.headroom, 0.0)
    for k, lt in enumerate(boot.cts):
        if k > 0 and k == len(boot.cts) - 1 and boot.headroom > 1:
            a = a.with_scale(a.scale * boot.headroom, float(a.bound) / boot.headroom)
        a = _core.apply_linear_transform(eng, a, lt)
    conj = eng.conjugate(a)
    real = eng.add(a, conj)
    imag = _core.mul_by_i(eng, eng.sub(a, conj), True)
    em_scale = boot.early_eval_mod_scale if early else None
    if early and real_values and not half:
        w = _eval_mod(boot, real, False, em_scale, True)
        return w.with_scale(boot.ctx.scale_at(boot.early_output_level), 0.0)
    real, imag = _eval_mod(boot, real, half, em_scale, early), _eval_mod(boot, imag, half, em_scale, early)
    w = eng.add(real, _core.mul_by_i(eng, imag, False))
    if early:
        return w.with_scale(boot.ctx.scale_at(boot.early_output_level), 0.0)
    w = w.with_scale(boot.stc_input_scale, 0.0)
    for lt in boot.stc:
        w = _core.apply_linear_transform(eng, w, lt)
    return w


def bootstrap(boot, ct, bound, stc_first, real_values=False):
    """Bootstrapper.bootstrap as it was (the input checks left to the caller)."""
    b = min(float(bound), float(ct.bound))
    ct = ct.with_scale(ct.scale, b)
    if stc_first:
        w = _refresh(boot, _to_coefficients(boot, ct, b), half=False, early=True, real_values=real_values)
    else:
        w = _refresh(boot, _to_level0(boot, ct), half=False)
    return w.with_scale(w.scale, b + boot.error_bound(b, stc_first))


def bootstrap_pair(boot, a, b, bound_a, bound_b, stc_first):
    """Bootstrapper.bootstrap_pair as it was."""
    eng = boot.ctx._engine
    ba, bb = min(float(bound_a), float(a.bound)), min(float(bound_b), float(b.bound))
    a, b = a.with_scale(a.scale, ba), b.with_scale(b.scale, bb)
    multiplier = boot.early_premultiplier if stc_first else boot.premultiplier
    if multiplier % 2:
        return (bootstrap(boot, a, ba, stc_first, True), bootstrap(boot, b, bb, stc_first, True))
    if stc_first:
        lv = max(boot.params.stc_levels, min(a.level, b.level))
        a, b = (c if c.level <= lv else eng.level_to(c, lv) for c in (a, b))
        z = _to_coefficients(boot, _real_pair(boot, a, b), 2.0 * max(ba, bb), multiplier // 2)
        w = _refresh(boot, z, half=True, early=True)
    else:
        z = _real_pair(boot, _to_level0(boot, a, 1), _to_level0(boot, b, 1))
        if multiplier > 2:
            z = eng.mul_scalar(z, float(multiplier // 2))
        w = _refresh(boot, z, half=True)
    conj = eng.conjugate(w)
    re = eng.add(w, conj)
    im = _core.mul_by_i(eng, eng.sub(w, conj), True)
    return (re.with_scale(re.scale, ba + boot.error_bound(ba, stc_first)),
            im.with_scale(im.scale, bb + boot.error_bound(bb, stc_first)))


def error_bound(boot, bound, stc_first):
    """Bootstrapper.error_bound as it was (float64, the same expression)."""
    from hetensor.boot import NOISE_BOUND

    b = float(bound)
    w = 2 * math.pi * b / (boot.early_message_ratio if stc_first else boot.message_ratio)
    bend = {0: w * w / 6, 3: 3 * w ** 4 / 40, 5: 5 * w ** 6 / 112}[boot.params.arcsine_degree]
    return max(b, 1.0) * NOISE_BOUND + 1.5 * b * bend
