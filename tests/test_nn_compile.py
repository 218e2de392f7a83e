"""hetensor.nn compile: key policies chosen before any key is made, the planned
forward against the encrypted one, and the bootstrap placement search.

Toy bootstrapping preset (4 levels between bootstraps, so many bootstraps).
Each policy gets its own context so that keys made for one do not hide a key
the other misses; the contexts do not auto-make keys, so a key the plan
missed fails the forward with MissingKeyError.
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor as ht  # noqa: E402
import hetensor.nn as hnn  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from hetensor.linalg.keypolicy import power_of_two_terms  # noqa: E402

PRESET = "toy-boot-insecure"


def bits(a, b):
    err = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    return math.inf if err == 0 else -math.log2(err / max(float(np.max(np.abs(b))), 1e-300))


def small_model(seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(htt.GaussianKernelAttention(4, 2, lora_rank=1), torch.nn.Linear(4, 6), torch.nn.GELU(),
                            torch.nn.Linear(6, 3)).double()
    rng = np.random.default_rng(seed)
    calib = rng.normal(0, 1, (16, 2, 4))
    return m, calib, rng


@pytest.mark.parametrize("policy", ["exact", "few", "power-of-two"])
def test_compile_under_each_key_policy(policy):
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=21)
    m, calib, rng = small_model()
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.fresh_level - 1)
    x = calib[:2]
    plans = model.plan_keys(ctx, x)  # nothing made yet
    assert set(plans) == {"exact", "few", "power-of-two"}
    assert all(p.new_key_bytes == ctx.key_bytes(p.new_keys) > 0 for p in plans.values())
    before = set(ctx.rotation_steps)
    rep = model.compile(ctx, x, key_policy=policy)
    assert rep.key_policy == policy == ctx.key_policy
    assert rep.unplanned_keys == 0  # the plan listed every key the traced forward used
    assert set(ctx.rotation_steps) - before == set(plans[policy].new_keys)
    assert rep.new_key_bytes == plans[policy].new_key_bytes
    if policy == "power-of-two":
        assert all(len(power_of_two_terms(s, ctx.slots)) == 1 for s in rep.plan.new_keys)
    # the plan predicted the encrypted forward's bootstraps and levels
    run = model.last_run
    assert (rep.plan.circuits, len(rep.plan.bootstraps)) == (run.circuits, len(run.bootstraps))
    assert rep.plan.output_level == rep.output_level and rep.plan.input_level == rep.input_level
    assert bits(ctx.decrypt(rep.output), model(x).reshape(-1, 3)) >= 12
    # another input of the shape: no key made, no MissingKeyError
    keys = set(ctx.rotation_steps)
    x2 = rng.normal(0, 1, (2, 2, 4))
    ct, seq = hnn.encrypt_tokens(ctx, x2)
    enc = ctx.decrypt(model(ct, seq_len=seq))
    assert set(ctx.rotation_steps) == keys
    assert bits(enc, model(x2).reshape(enc.shape)) >= 12


def test_auto_key_policy_follows_the_budget():
    m, calib, _ = small_model(1)
    x = calib[:2]
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=22)
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.fresh_level - 1)
    plans = model.plan_keys(ctx, x)
    smallest = min(plans.values(), key=lambda p: p.new_key_bytes)
    rep = model.compile(ctx, x, key_budget=0)  # nothing fits: the fewest bytes
    assert rep.key_policy == smallest.key_policy and rep.unplanned_keys == 0
    assert "MiB" in str(rep) and all(p in str(rep) for p in plans)
    ctx2 = ht.Context.from_preset(PRESET, bootstrap=True, seed=23)
    model2 = hnn.from_torch(m, calibration=calib, max_depth=ctx2.fresh_level - 1)
    assert model2.compile(ctx2, x).key_policy == "exact"  # the default budget holds a toy ring's keys


def test_compile_rejects_bad_arguments():
    m, calib, _ = small_model(2)
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=24)
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.fresh_level - 1)
    before = set(ctx.rotation_steps)
    with pytest.raises(ValueError, match="key_policy must be one of"):
        model.compile(ctx, calib[:2], key_policy="fast-ish")
    with pytest.raises(ValueError, match="placement must be one of"):
        model.compile(ctx, calib[:2], placement="late")
    with pytest.raises(ValueError, match="key_budget"):
        model.compile(ctx, calib[:2], key_budget=-1)
    with pytest.raises(ValueError, match="do not split"):
        model.plan_keys(ctx, calib[:2].reshape(4, 4)[:3], seq_len=2)
    assert set(ctx.rotation_steps) == before  # refused before any key was made
