"""bench/train_step.py --time at the toy bootstrapping preset: every distinct operation of the planned
LoRA training step (forward, backward, AdamW) is timed encrypted and checked in bits against float64,
or listed as not timed; the step's sums are the plan's counts times the per-operation timings; a
second run with --reuse times nothing already timed. Each run is a subprocess (its keys are freed)."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytest.importorskip("hetensor.examples.minilm")


def _run(tmp_path: pathlib.Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    args = ["--preset", "toy-boot-insecure", "--small", "--tokens", "8", "--kinds", "gk", "--time",
            "--json", str(out), *extra]
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import train_step; train_step.main({args!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def test_train_step_time_covers_the_plan_and_reuse_times_nothing_again(tmp_path):
    rec = _run(tmp_path, "first")
    ops = {o["sig"]: o for o in rec["ops"]}
    k = rec["kinds"]["gk"]
    untimed = {u["sig"] for u in k["untimed_signatures"]}
    weights = k["signature_weights"]
    # every distinct operation of the step is timed or listed as not timed (with why), never dropped
    assert set(weights) == (set(weights) & set(ops)) | untimed
    assert k["complete"] and not untimed and not rec["errors"], (untimed, rec["errors"])
    kinds = {o["kind"] for o in rec["ops"]}
    assert {"bootstrap", "ccmm", "cpmm", "mul", "mul_plain", "add", "poly"} <= kinds, kinds
    for o in rec["ops"]:  # each timed operation agrees with its float64 result
        assert o["bits"] >= 20.0, o
        assert o["seconds"] >= 0.0 and o["cpu_seconds"] >= 0.0
    # the step's sums are the plan's multiplicities times the per-operation timings
    cpu = sum(n * ops[s]["cpu_seconds"] for s, n in weights.items())
    wall = sum(n * ops[s]["seconds"] for s, n in weights.items())
    assert math.isclose(k["cpu_seconds"], cpu, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(k["seconds"], wall, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(sum(k["phases"][p]["cpu_seconds"] for p in ("forward", "backward", "optimizer")), cpu,
                        rel_tol=1e-9, abs_tol=1e-12)
    assert set(k["phases"]["optimizer"]["classes"]) <= {"bootstraps", "AdamW (element-wise, inverse sqrt)"}
    # every bootstrap circuit the step runs is a recorded (so timed) operation
    assert sum(k[p]["bootstrap_circuits"] for p in ("forward", "backward", "optimizer")) == k["bootstrap_circuits"]
    assert "loss" in k["phases"]["backward"]["classes"]
    # a second run reuses every timing: nothing is timed again, and the sums are the same
    again = _run(tmp_path, "again", "--reuse", str(tmp_path / "first.json"))
    assert again["timed_now"] == 0
    assert all(o["reused"] for o in again["ops"])
    assert math.isclose(again["kinds"]["gk"]["cpu_seconds"], k["cpu_seconds"], rel_tol=1e-12)


def test_a_second_plan_of_the_step_records_every_operation():
    """Planning the step again on the same layer (as --time does when it changes the key policy) records
    the same operations: no gradient left by the first plan is accumulated into (whose ghosts would record
    the AdamW operations into the first plan's Recorder), and the recorded bootstraps are the step's."""
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    import train_step as T
    import nn_minilm
    import hetensor.nn as hnn
    import hetensor.optim as hopt

    ctx = T.planning_context("toy-boot-insecure")
    g = np.random.default_rng(0)
    x, mask = g.normal(0.0, 1.0, (2, 8, 16)), np.ones((2, 8))
    mask[1, 6:] = 0.0
    depth = ctx.usable_levels - 1
    layer = nn_minilm._small_layer("gk")
    layer.calibrate(x, mask=mask, max_depth=depth)
    opt_for = lambda ps: hopt.AdamW(ps, lr=1e-3, eps=1e-4, weight_decay=0.01, max_depth=depth)  # noqa: E731
    hnn.calibrate_training(layer, x, g.normal(0.0, 1.0, x.shape), hnn.MSELoss(), batch_size=1, mask=mask,
                           optimizer=opt_for)
    hnn.encrypt_adapters(layer, ctx)
    plans = [T.plan_step(layer, ctx, 8, mask[:1], opt_for(layer.lora_parameters())) for _ in range(2)]
    for ph in plans:
        assert sum(o["cts"] for p in T.PHASES for o in ph[p] if o["kind"] == "bootstrap") == ph["_circuits"]
    assert [len(plans[1][p]) for p in T.PHASES] == [len(plans[0][p]) for p in T.PHASES]
    assert plans[1]["_circuits"] == plans[0]["_circuits"] and plans[0]["optimizer"]


def test_train_step_resumes_after_a_kill(tmp_path):
    """A timing run killed (SIGKILL) after some operations resumes with --resume from its JSON (written
    atomically after every operation): what it had timed is kept as its own, the rest is timed, the step
    is complete. Holds wherever the kill lands (even after the run's end)."""
    out = tmp_path / "killed.json"
    args = ["--preset", "toy-boot-insecure", "--small", "--tokens", "8", "--kinds", "gk", "--time", "--json", str(out)]
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import train_step; train_step.main({args!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            if out.exists() and len(json.loads(out.read_text()).get("ops", [])) >= 3:
                proc.kill()
                break
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    before = {o["sig"]: o for o in json.loads(out.read_text())["ops"]}
    assert len(before) >= 3
    rec = _run(tmp_path, "killed", "--resume")
    k = rec["kinds"]["gk"]
    assert k["complete"] and not rec["errors"]
    ops = {o["sig"]: o for o in rec["ops"]}
    assert set(before) <= set(ops)
    for s, o in before.items():  # kept as they were, still this run's own timings
        assert ops[s]["cpu_seconds"] == o["cpu_seconds"] and not ops[s]["reused"]
    assert rec["timed_now"] == len(ops) - len(before)
    assert all(o["bits"] >= 20.0 for o in rec["ops"])


def test_train_step_refuses_an_unknown_kind(tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import train_step; "
            "train_step.main(['--preset', 'toy-boot-insecure', '--small', '--tokens', '8', '--kinds', 'relu'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode != 0 and "unknown kind 'relu'" in done.stderr


def test_train_step_shards_split_the_timing_and_merge_into_one_step(tmp_path):
    """Two --shard processes time disjoint halves of the step's operations; a --resume run with --merge on
    both times nothing more, keeps their timings as its own (not reused) and sums a complete step."""
    halves = [_run(tmp_path, f"shard{k}", "--shard", f"{k}/2") for k in range(2)]
    own = [{o["sig"] for o in h["ops"]} for h in halves]
    assert own[0] and own[1] and not own[0] & own[1], "the shards must time disjoint, non-empty halves"
    for h in halves:
        assert not h["kinds"]["gk"]["complete"]  # each shard alone leaves the other's half untimed
    merged = _run(tmp_path, "merged", "--resume", "--no-boot-keys", "--merge", str(tmp_path / "shard0.json"),
                  "--merge", str(tmp_path / "shard1.json"))
    k = merged["kinds"]["gk"]
    assert merged["timed_now"] == 0 and k["complete"] and not merged["errors"]
    ops = {o["sig"]: o for o in merged["ops"]}
    assert set(ops) == own[0] | own[1] and not any(o["reused"] for o in ops.values())
    for h in halves:
        for o in h["ops"]:
            assert ops[o["sig"]]["cpu_seconds"] == o["cpu_seconds"] and o["bits"] >= 20.0


@pytest.mark.parametrize("shard, why", [("2/2", "K must be in 0..N-1"), ("a/2", "give K/N with integers")])
def test_train_step_refuses_a_bad_shard(shard, why):
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import train_step; "
            f"train_step.main(['--preset', 'toy-boot-insecure', '--small', '--tokens', '8', '--shard', {shard!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode != 0 and why in done.stderr, done.stderr[-2000:]


def test_train_step_merge_needs_resume(tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import train_step; "
            "train_step.main(['--preset', 'toy-boot-insecure', '--small', '--tokens', '8', '--time', "
            f"'--json', {str(tmp_path / 'x.json')!r}, '--merge', {str(tmp_path / 'y.json')!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode != 0 and "give --resume too" in done.stderr, done.stderr[-2000:]


def test_train_step_only_times_the_kinds_asked(tmp_path):
    """--only bootstrap times the step's bootstraps and nothing else (the rest is listed as not timed)."""
    rec = _run(tmp_path, "boots", "--only", "bootstrap")
    k = rec["kinds"]["gk"]
    assert rec["ops"] and {o["kind"] for o in rec["ops"]} == {"bootstrap"}
    assert all(o["bits"] >= 20.0 for o in rec["ops"])
    assert not k["complete"] and "bootstraps" not in k["not_timed"] and "CCMM" in k["not_timed"]
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import train_step; "
            "train_step.main(['--preset', 'toy-boot-insecure', '--small', '--tokens', '8', '--kinds', 'gk', "
            f"'--time', '--json', {str(tmp_path / 'x.json')!r}, '--only', 'bootstrapp'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode != 0 and "no operation of kind ['bootstrapp']" in done.stderr, done.stderr[-2000:]
