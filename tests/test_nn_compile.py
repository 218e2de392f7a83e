"""hetensor.nn compile: key policies chosen before any key is made, the planned
forward against the encrypted one, and the bootstrap placement search.

Toy bootstrapping preset (4 levels between bootstraps, so many bootstraps).
Each policy gets its own context so that keys made for one do not hide a key
the other misses; the contexts do not auto-make keys, so a key the plan
missed fails the forward with MissingKeyError.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import hetensor as ht  # noqa: E402
import hetensor.nn as hnn  # noqa: E402
from hetensor import torch as htt  # noqa: E402
from hetensor.linalg.keypolicy import power_of_two_terms  # noqa: E402
from conftest import rel_bits as bits  # noqa: E402

PRESET = "toy-boot-insecure"


def small_model(seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(htt.GaussianKernelAttention(4, 1, lora_rank=1), torch.nn.Linear(4, 3),
                            torch.nn.Tanh()).double()
    rng = np.random.default_rng(seed)
    calib = rng.normal(0, 1, (16, 4, 4))  # 2 sequences of 4 tokens: the policies differ in keys
    return m, calib, rng


@pytest.mark.parametrize("policy", ["auto", "few", "power-of-two"])
def test_compile_under_each_key_policy(policy):
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=21)
    m, calib, rng = small_model()
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.usable_levels - 1)
    x = calib[:2]
    plans = model.plan_keys(ctx, x)  # nothing made yet
    assert set(plans) == {"exact", "few", "power-of-two"}
    assert all(p.new_key_bytes == ctx.key_bytes(p.new_keys) > 0 for p in plans.values())
    before = set(ctx.rotation_steps)
    rep = model.compile(ctx, x, key_policy=policy)
    policy = "exact" if policy == "auto" else policy  # the default budget holds a toy ring's keys
    assert rep.key_policy == policy == ctx.key_policy
    assert rep.unplanned_keys == 0  # the plan listed every key the traced forward used
    assert set(ctx.rotation_steps) - before == set(plans[policy].new_keys)
    assert rep.new_key_bytes == plans[policy].new_key_bytes
    if policy == "power-of-two":
        assert all(len(power_of_two_terms(s, ctx.slots)) == 1 for s in rep.plan.new_keys)
    # the plan predicted the encrypted forward's bootstraps and levels
    run = model.last_run
    assert (rep.plan.circuits, len(rep.plan.bootstraps)) == (run.circuits, len(run.bootstraps))
    # the placement search never makes it worse (test_placement_search_against_just_in_time: better)
    assert rep.circuits <= rep.greedy_circuits
    assert "MiB" in str(rep) and policy in str(rep)
    assert rep.plan.output_level == rep.output_level and rep.plan.input_level == rep.input_level
    assert bits(ctx.decrypt(rep.output), model(x).reshape(-1, 3)) >= 12
    if policy != "power-of-two":
        return  # the traced forward above ran on the planned keys alone (unplanned_keys == 0)
    # another input of the shape: no key made, no MissingKeyError
    keys = set(ctx.rotation_steps)
    x2 = rng.normal(0, 1, (2, 4, 4))
    ct, seq = hnn.encrypt_tokens(ctx, x2)
    enc = ctx.decrypt(model(ct, seq_len=seq))
    assert set(ctx.rotation_steps) == keys
    assert bits(enc, model(x2).reshape(enc.shape)) >= 12


def test_auto_key_policy_follows_the_budget():
    from hetensor.nn.plan import choose_policy

    m, calib, _ = small_model(1)
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=22)
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.usable_levels - 1)
    model[0].per_sequence = False  # the dense scores' encrypted x encrypted products: the policies differ
    plans = model.plan_keys(ctx, calib[:2])
    by_bytes = sorted(plans.values(), key=lambda p: p.new_key_bytes)
    assert plans["exact"].new_key_bytes > plans["few"].new_key_bytes > plans["power-of-two"].new_key_bytes
    chosen, options = choose_policy(model, ctx, (2, 4, 4), budget=0)  # nothing fits: the fewest bytes
    assert chosen.key_policy == by_bytes[0].key_policy and set(options) == set(plans)
    assert choose_policy(model, ctx, (2, 4, 4))[0].key_policy == "exact"
    # a budget between: the fastest policy that fits
    assert choose_policy(model, ctx, (2, 4, 4), budget=plans["few"].new_key_bytes)[0].key_policy == "few"
    assert ctx.key_policy == "exact"  # planning leaves the context's policy alone


def test_compile_rejects_bad_arguments():
    m, calib, _ = small_model(2)
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=24)
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.usable_levels - 1)
    before = set(ctx.rotation_steps)
    with pytest.raises(ValueError, match="key_policy must be one of"):
        model.compile(ctx, calib[:2], key_policy="fast-ish")
    with pytest.raises(ValueError, match="placement must be one of"):
        model.compile(ctx, calib[:2], placement="late")
    with pytest.raises(ValueError, match="key_budget"):
        model.compile(ctx, calib[:2], key_budget=-1)
    with pytest.raises(ValueError, match="do not split"):
        model.plan_keys(ctx, calib[:2].reshape(8, 4)[:5], seq_len=2)
    assert set(ctx.rotation_steps) == before  # refused before any key was made


def test_placement_search_against_just_in_time():
    from hetensor.nn.plan import plan_forward, search_placement

    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=25)
    m, calib, _ = small_model(3)
    model = hnn.from_torch(m, calibration=calib, max_depth=ctx.usable_levels - 1)
    # the dense scores (training's form): refreshing the scores' second operand early pairs it
    # with the first in one complex-packed bootstrap
    model[0].per_sequence = False
    jit = plan_forward(model, ctx, (2, 4, 4))
    best = search_placement(model, ctx, (2, 4, 4), jit)
    assert best.circuits < jit.circuits and best.cost < jit.cost
    checked = {(s["module"], s["site"], s["occ"]) for s in jit.sites if not s["refreshed"]}
    assert set(best.force) <= checked  # only level checks where the tensor was not refreshed
    assert search_placement(model, ctx, (2, 4, 4), jit, max_trials=0) is jit
    # plain and simulate modes follow the chosen placement too (same outputs in plain mode)
    x = calib[:2]
    before = model(x)
    object.__setattr__(model, "_force", best.force)
    assert np.array_equal(model(x), before)
    model.simulate(x, ctx)
    refreshed = {(b["module"], b["site"]) for b in model.last_run.bootstraps}
    assert {(f[0], f[1]) for f in best.force} <= refreshed


def test_encrypted_adapters_in_attention_plan_their_levels():
    # x @ A, then (x A) @ B leave different packings: their sum takes a level (a refresh at
    # a 4-level preset); the plan must see it, or the forward runs out of levels
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=26)
    torch.manual_seed(6)
    att = htt.GaussianKernelAttention(4, 1, lora_rank=2).double()
    with torch.no_grad():
        for m in (att.q, att.k, att.v):
            m.lora_B.normal_(0.0, 0.3)
    x = np.random.default_rng(6).normal(0, 1, (1, 3, 4))
    model = hnn.from_torch(att, calibration=x, max_depth=ctx.usable_levels - 1)
    plain = model(x)
    rep = model.compile(ctx, x, encrypt_adapters=True)
    assert isinstance(model.q.lora_A, ht.CipherTensor) and rep.unplanned_keys == 0
    assert rep.plan.circuits == model.last_run.circuits
    assert any(s["site"] == "sum.a" for s in model.last_run.sites)  # the adapters' sum was level-checked
    assert bits(ctx.decrypt(rep.output), plain.reshape(-1, 4)) >= 12


def test_a_tensor_of_several_ciphertexts_pairs_them_in_one_bootstrap():
    # 512 tokens x 8 features take 2 ciphertexts at N = 2^12: a refresh of that tensor alone
    # runs one complex-packed bootstrap (both ciphertexts), as planned
    ctx = ht.Context.from_preset(PRESET, bootstrap=True, seed=27)
    torch.manual_seed(7)
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 8), torch.nn.GELU()).double()
    x = np.random.default_rng(7).normal(0, 1, (128, 4, 4))
    model = hnn.from_torch(m, calibration=x, max_depth=ctx.usable_levels - 1)
    rep = model.compile(ctx, x)
    run = model.last_run
    assert run.bootstraps and all(b["cts"] == 2 for b in run.bootstraps)
    assert run.circuits == rep.plan.circuits == len(run.bootstraps)  # not 2 per tensor
    assert bits(ctx.decrypt(rep.output), model(x).reshape(-1, 8)) >= 12
