"""Bootstrapping on device-resident ciphertexts.

ModRaise, the sparse-secret encapsulation switches and the multiplication by i
run as backend calls (boot/modraise, boot/encapsulation), the linear transforms
and polynomials as in tests/test_resident_lintrans.py and
test_resident_polyeval.py, so the whole circuit (one call of the bootstrap
executor, cpp/boot/executor) runs on the ciphertext's device and must equal
the host's bootstrap word for word; each result also decrypts against float64. "cpu"
puts the residues in the CPU backend's memory; "cuda:0" runs the same cases
where a GPU is present and skips cleanly elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetensor as ht
from hetensor import _core

from conftest import DEVICES, bits, resident


@pytest.fixture(scope="module")
def boot_ctx():
    return ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=29)


def _same(host, dev, device: str) -> None:
    assert isinstance(dev, _core.DeviceCiphertext) and dev.device == device
    back = _core.device_download(dev)
    assert (back.level, back.scale, back.size) == (host.level, host.scale, host.size)
    assert back.bound == pytest.approx(host.bound, rel=0, abs=0)
    assert np.array_equal(back.limbs(), host.limbs())


@pytest.mark.parametrize("device", DEVICES)
def test_the_steps_match_the_host(boot_ctx, rng, device):
    eng = boot_ctx._engine
    x = rng.uniform(-1, 1, boot_ctx.slots)
    X = boot_ctx.encrypt(x).level_to(0)
    dX = resident(X, device)
    for name, host, dev in [
        ("mod_raise", _core.mod_raise(eng, X._ct), _core.mod_raise(eng, dX._ct)),
        ("switch_to_sparse", _core.switch_to_sparse(eng, X._ct), _core.switch_to_sparse(eng, dX._ct)),
        ("mul_by_i", _core.mul_by_i(eng, X._ct), _core.mul_by_i(eng, dX._ct)),
        ("mul_by_-i", _core.mul_by_i(eng, X._ct, True), _core.mul_by_i(eng, dX._ct, True)),
    ]:
        _same(host, dev, device)
    sparse = _core.switch_to_sparse(eng, dX._ct)
    raised = _core.mod_raise(eng, sparse)
    _same(_core.switch_to_dense(eng, _core.mod_raise(eng, _core.switch_to_sparse(eng, X._ct))),
          _core.switch_to_dense(eng, raised), device)
    # i * x and back: exact, no level.
    y = _core.mul_by_i(eng, _core.mul_by_i(eng, dX._ct), True)
    assert bits(boot_ctx.decrypt(X._like(y)), x) >= 20
    with pytest.raises(ValueError, match="level 0"):
        _core.switch_to_sparse(eng, resident(boot_ctx.encrypt(x), device)._ct)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("stc_first", [True, False])
def test_a_resident_bootstrap_equals_the_host_one(boot_ctx, rng, device, stc_first):
    x = rng.uniform(-1, 1, boot_ctx.slots)
    X = boot_ctx.encrypt(x).level_to(3)
    h = boot_ctx.bootstrap(X, stc_first=stc_first)
    d = boot_ctx.bootstrap(resident(X, device), stc_first=stc_first)
    assert str(d.device) == device
    _same(h._ct, d._ct, device)
    assert bits(boot_ctx.decrypt(d), x) >= 20
