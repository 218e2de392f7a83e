"""The peers' matrix products of the bench (group linalg) on small sizes.

The packing of desilofhe's batched products is checked in numpy (its model of
the timed run must give X @ Y exactly); the libraries themselves run on their
smallest settings (desilofhe's 16 x 16 blocks, TenSEAL at N = 2^13), a few
seconds in all. The catalogue's sizes are measured by the bench, not here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from hetensor.bench.ops_linalg import LINALG_OP_NAMES, linalg_inputs
from hetensor.bench.peers.desilofhe_linalg import arrangement, plan, simulate, unblock
from hetensor.bench.timing import Bench, Unavailable, measure


def _note_bits(note: str) -> float:
    return float(re.search(r"([\d.]+) bits", note).group(1))


@pytest.mark.parametrize("op,b", [(name, 64) for name in LINALG_OP_NAMES] + [
    ("cpmm_20x40x24", 16), ("ccmm_40x20x40", 16), ("lora_20x48x8x48", 16), ("cpmm_8x200x16", 16),
])
def test_desilofhe_packing_model_is_the_product(op, b):
    inp = linalg_inputs(op)
    plans, lefts, rights = arrangement(inp, b)
    z = unblock(simulate(plans, lefts, rights), plans[-1], inp.ref.shape)
    np.testing.assert_allclose(z, inp.ref, atol=1e-12)


def test_desilofhe_plan_counts():
    # the catalogue at 64 x 64 blocks: CPMM is 288 block products in 2 calls and 3 rolls
    p = plan(2, 12, 12)
    assert (p.groups, p.kc, p.calls, p.rolls, p.block_products) == (24, 8, 2, 3, 288)
    assert plan(1, 1, 1).calls == 1 and plan(1, 1, 1).rolls == 0
    with pytest.raises(ValueError, match="do not fit"):
        plan(17, 1, 16)


def test_desilofhe_products_on_small_blocks():
    pytest.importorskip("desilofhe", reason="desilofhe is not installed (pip install desilofhe)")
    from hetensor.bench.peers.desilofhe_linalg import DesiloLinalgCase, linalg_bench

    # LoRA: two chained ciphertext x ciphertext products and rolls, through the Bench
    bench = linalg_bench("lora_16x48x8x32", threads=1, block=16)
    assert isinstance(bench, Bench)
    stats = measure(bench, repeat=1, warmup=0)
    assert stats.samples[0] > 0 and stats.memory["peak_rss_bytes"] > 0
    assert _note_bits(bench.note) > 18, bench.note
    assert "levels 2->0" in bench.note and "amortised" in bench.note and "memory:" in bench.note
    # CPMM: ciphertext x plaintext calls plus rolls, on the same engine and keys
    case = DesiloLinalgCase("cpmm_8x40x16", block=16, engine=bench.run.__self__.eng)
    case.check(None, case.run())
    assert case.bits > 18 and case.level_out == case.level_in - 1
    reason = linalg_bench("cpmm_300x16x300", threads=1, block=16)
    assert isinstance(reason, Unavailable) and "do not fit" in reason.reason
    assert isinstance(linalg_bench("ccmm_8x8x8", threads=1, block=8), Unavailable)


def test_tenseal_products_on_a_small_ring():
    pytest.importorskip("tenseal", reason="tenseal is not installed (pip install tenseal)")
    from hetensor.bench.peers.tenseal_linalg import linalg_bench

    bench = linalg_bench("cpmm_4x32x16", log_n=13)
    assert bench.divisor == pytest.approx(1 / 4)  # one row timed, scaled to the 4 rows
    measure(bench, repeat=1, warmup=0)
    assert "CKKSVector.mm" in bench.note and _note_bits(bench.note) > 15, bench.note
    bench = linalg_bench("lora_4x16x2x16", log_n=13)
    measure(bench, repeat=1, warmup=0)
    assert "CKKSTensor.mm" in bench.note and "2 level(s)" in bench.note and _note_bits(bench.note) > 15


def test_peer_adapters_dispatch_linalg_ops(monkeypatch):
    """The adapters hand the catalogue's linalg ops to their linalg modules (stubbed here)."""
    from hetensor.bench.peers import desilofhe_linalg, desilofhe_peer, tenseal_linalg, tenseal_peer

    calls = []
    monkeypatch.setattr(tenseal_linalg, "linalg_bench", lambda op, **kw: calls.append(("tenseal", op)) or "t")
    monkeypatch.setattr(desilofhe_linalg, "linalg_bench", lambda op, threads: calls.append(("desilofhe", op)) or "d")
    # sessions without their libraries' state: the linalg ops need none of it
    seal = tenseal_peer._SealSession.__new__(tenseal_peer._SealSession)
    seal.s = seal.ev = None
    desilo = desilofhe_peer._DesiloSession.__new__(desilofhe_peer._DesiloSession)
    desilo.e, desilo.threads = None, 1
    for op in LINALG_OP_NAMES:
        assert seal.bench(op) == "t" and desilo.bench(op) == "d"
    assert calls == [(lib, op) for op in LINALG_OP_NAMES for lib in ("tenseal", "desilofhe")]
