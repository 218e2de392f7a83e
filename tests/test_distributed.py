"""hetensor.distributed: the modular all-reduce of raw limbs, sharding helpers,
their errors, and a 2-process data-parallel LoRA gradient step under torchrun
(gloo over 127.0.0.1) that must equal the single-process step bit for bit.

The all-reduce arithmetic is checked in-process first: the packed int64 words
of W ciphertexts, summed as a collective would, reduce to exactly the
residues of adding the W ciphertexts one by one (unsplit words for small W,
32-bit halves when W * q could overflow int64).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import hetensor as ht
from hetensor import distributed as hd

from conftest import bits

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

HERE = os.path.dirname(os.path.abspath(__file__))
LORA_BITS = 17  # as tests/test_linalg_lora.py: ct x ct products at N = 2^12 (~22 bits observed)


def _sum_as_collective(cts, split):
    """What all_reduce's collective computes: int64 sums of the packed words."""
    words = [hd.pack_limbs(c._ct.limbs(), split) for c in cts]
    total = np.zeros_like(words[0])
    for w in words:
        total += w
    return total


@pytest.mark.parametrize("world", [2, 3, 8, 13])
def test_modular_sum_of_limbs_equals_sequential_adds(toy_ctx, rng, world):
    xs = [rng.uniform(-1, 1, 300) for _ in range(world)]
    cts = [toy_ctx.encrypt(x) for x in xs]
    seq = cts[0]
    for c in cts[1:]:
        seq = seq + c
    q = toy_ctx._engine.q
    split = hd.needs_split(q[: cts[0].level + 1], world)
    assert split == (world * (max(q) - 1) > (1 << 63) - 1)
    res = hd.unpack_sum(_sum_as_collective(cts, split), q, split)
    assert np.array_equal(res, seq._ct.limbs())
    out = cts[0]._like(cts[0]._ct.with_limbs(res, q, float(seq._ct.bound)))
    assert np.array_equal(toy_ctx.decrypt(out), toy_ctx.decrypt(seq))
    assert bits(toy_ctx.decrypt(out), np.sum(xs, axis=0)) >= 24


def test_split_path_forced_matches_unsplit(toy_ctx, rng):
    cts = [toy_ctx.encrypt(rng.uniform(-1, 1, 64)) for _ in range(2)]
    q = toy_ctx._engine.q
    a = hd.unpack_sum(_sum_as_collective(cts, False), q, False)
    b = hd.unpack_sum(_sum_as_collective(cts, True), q, True)
    assert np.array_equal(a, b)


def test_unpack_sum_refuses_overflowed_words(toy_ctx, rng):
    words = hd.pack_limbs(toy_ctx.encrypt(rng.uniform(-1, 1, 8))._ct.limbs(), False)
    words[0, 0, 0, 0] = -5
    with pytest.raises(ValueError, match="overflowed"):
        hd.unpack_sum(words, toy_ctx._engine.q, False)
    with pytest.raises(TypeError, match="uint64"):
        hd.pack_limbs(words, False)


def test_limbs_view_is_read_only_and_with_limbs_checks(toy_ctx, rng):
    x = toy_ctx.encrypt(rng.uniform(-1, 1, 16))
    limbs = x._ct.limbs()
    assert limbs.shape == (1, 2, x.level + 1, toy_ctx.ring_degree) and limbs.dtype == np.uint64
    with pytest.raises(ValueError):
        limbs[0, 0, 0, 0] = 1
    q = toy_ctx._engine.q
    with pytest.raises(ValueError, match="shape"):
        x._ct.with_limbs(limbs[:, :, :1], q, 1.0)
    bad = limbs.copy()
    bad[0, 1, 0, 3] = q[0]
    with pytest.raises(ValueError, match="below the prime"):
        x._ct.with_limbs(bad, q, 1.0)
    with pytest.raises(ValueError, match="one prime per limb"):
        x._ct.with_limbs(limbs, q[:1], 1.0)
    with pytest.raises(ValueError, match="bound"):
        x._ct.with_limbs(limbs, q, float("nan"))


def test_shard_bounds():
    assert hd.shard_bounds(5, 2) == [(0, 3), (3, 5)]
    assert hd.shard_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]
    assert hd.shard_bounds(0, 1) == [(0, 0)]
    for bad in [(-1, 2), (3, 0), (2.0, 1), (True, 1)]:
        with pytest.raises(ValueError):
            hd.shard_bounds(*bad)


def test_collectives_need_an_initialized_group(toy_ctx, rng):
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        hd.all_reduce(toy_ctx.encrypt(rng.uniform(-1, 1, 4)))


@pytest.fixture(scope="module")
def world_of_one():
    """A gloo group of one process (no network: an in-memory store)."""
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_world_of_one_is_the_identity(world_of_one, toy_ctx, rng):
    x = toy_ctx.encrypt(rng.uniform(-1, 1, 40))
    hd.reset_stats()
    y = hd.all_reduce(x)
    assert np.array_equal(y._ct.limbs(), x._ct.limbs())
    assert bits(toy_ctx.decrypt(y), toy_ctx.decrypt(x)) == math.inf
    assert hd.stats().bytes["all_reduce"] == x._ct.limbs().nbytes
    items = [toy_ctx.encrypt(rng.uniform(-1, 1, 8)) for _ in range(3)]
    mine = hd.scatter_tensors(items, toy_ctx)
    back = hd.all_gather_tensors(mine, toy_ctx)
    assert [np.array_equal(a._ct.limbs(), b._ct.limbs()) for a, b in zip(items, back)] == [True] * 3
    assert hd.broadcast_context(toy_ctx) is toy_ctx
    assert hd.scatter_tensors([], toy_ctx) == [] and hd.all_gather_tensors([], toy_ctx) == []


def test_device_resident_tensors_travel_from_host_memory(world_of_one, toy_ctx, rng):
    # residues in backend memory (the CPU backend here, a GPU's pool elsewhere) are copied to the host for the
    # collective; the sum equals the host tensor's, bit for bit
    x = toy_ctx.encrypt(rng.uniform(-1, 1, 40))
    dx = x._like(ht._core.device_upload(x._ct, "cpu"))
    y = hd.all_reduce(dx)
    assert isinstance(y._ct, ht._core.Ciphertext) and np.array_equal(y.limbs(), x.limbs())
    (back,) = hd.all_gather_tensors(hd.scatter_tensors([dx], toy_ctx), toy_ctx)
    assert np.array_equal(back.to("cpu").limbs(), x.limbs())


def test_bad_arguments_raise(world_of_one, toy_ctx, rng):
    x = toy_ctx.encrypt(rng.uniform(-1, 1, 4))
    with pytest.raises(TypeError, match="CipherTensor"):
        hd.all_reduce(np.zeros(4))
    with pytest.raises(TypeError, match="list of CipherTensors"):
        hd.all_gather_tensors(x, toy_ctx)
    with pytest.raises(TypeError, match="list of CipherTensors"):
        hd.scatter_tensors(x, toy_ctx)
    with pytest.raises(ValueError, match="src"):
        hd.broadcast_tensor(x, toy_ctx, src=1)
    with pytest.raises(TypeError, match="Context"):
        hd.broadcast_context("ctx")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_data_parallel_lora_step_equals_single_process(tmp_path):
    run_lora_step(tmp_path, "gloo")


def _nccl_ready() -> bool:
    return bool(dist.is_available() and dist.is_nccl_available() and torch.cuda.is_available()
                and torch.cuda.device_count() >= 2)


@pytest.mark.gpu
@pytest.mark.skipif(not _nccl_ready(), reason="NCCL needs torch with NCCL and two GPUs (one per rank)")
def test_data_parallel_lora_step_over_nccl(tmp_path):
    # the same collectives with device buffers on each rank's GPU (distributed._device)
    run_lora_step(tmp_path, "nccl")


def run_lora_step(tmp_path, backend: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYTHONPATH=HERE,
               HETENSOR_DIST_BACKEND=backend)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), os.path.join(HERE, "dist_lora_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    z = np.load(tmp_path / "rank0.npz")
    # the same ciphertexts, bit for bit, as the single-process sums
    assert np.array_equal(z["dist_da_limbs"], z["single_da_limbs"])
    assert np.array_equal(z["dist_db_limbs"], z["single_db_limbs"])
    for copy in list(z["copies_da"]) + list(z["copies_db"]):
        assert copy.shape in (z["dist_da_limbs"].shape, z["dist_db_limbs"].shape)
    assert all(np.array_equal(c, z["dist_da_limbs"]) for c in z["copies_da"])  # every rank holds it
    assert all(np.array_equal(c, z["dist_db_limbs"]) for c in z["copies_db"])
    assert np.array_equal(z["gathered_per_seq"], z["single_per_seq"])  # gathered in batch order
    # hence the same decryption, and right against float64
    assert np.array_equal(z["dist_da"], z["single_da"]) and np.array_equal(z["dist_db"], z["single_db"])
    assert bits(z["dist_da"], z["ref_da"]) >= LORA_BITS
    assert bits(z["dist_db"], z["ref_db"]) >= LORA_BITS
    for rank in (0, 1):
        st = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert st["world"] == 2 and st["shard"] == 2
        assert st["calls"]["keys"] == 1 and st["bytes"]["keys"] > 0  # keys broadcast once
        assert st["calls"]["all_reduce"] == 2 and st["bytes"]["all_reduce"] > 0
        assert st["public"] == (rank == 1)  # the secret key stays on rank 0
        assert "differ in shape" in st["mismatch"], st["mismatch"]
