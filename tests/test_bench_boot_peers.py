"""The peers' ``bootstrap`` bench op (issue 4) on small rings.

Orion bootstraps at N = 2^12 with Lattigo's default N = 2^16 shapes (insecure,
a few seconds); desilofhe has no bootstrappable ring below N = 2^16, so its
adapter must say so. The N = 2^16 figures come from the bench itself
(``--preset n16-boot --ops bootstrap``), not from this file: minutes and up
to 20 GB each.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from hetensor.bench.peers import make_adapter
from hetensor.bench.peers.boot_common import BootFigures, BootOnlySession
from hetensor.bench.spec import preset_spec
from hetensor.bench.timing import Bench, Unavailable, measure

NOTE_FIELDS = ("bits vs the float64 input", "levels left", "bootstrapping key generation", "key memory",
               "peak RSS through key generation", "parameters:", "security:")


@contextmanager
def _peer(name: str):
    """The adapter of peer ``name``, released after the block; the test is skipped when the peer is not usable."""
    adapter = make_adapter(name)
    probe = adapter.probe()
    if probe.status != "ok":
        pytest.skip(f"{name}: {probe.status}: {probe.reason}")
    try:
        yield adapter
    finally:
        adapter.release()


def _bootstrap(adapter, preset: str):
    """Open the adapter at ``preset``, time one bootstrap (no warm-up); (session, bench, record)."""
    session = adapter.open(preset_spec(preset), 1)
    bench = session.bench("bootstrap")
    if isinstance(bench, Unavailable):
        return session, bench, None
    assert isinstance(bench, Bench)
    rec = measure(bench, repeat=1, warmup=0).as_dict()
    return session, bench, rec


def _has_every_figure(note: str) -> None:
    for field in NOTE_FIELDS:
        assert field in note, field


def test_note_carries_every_figure():
    fig = BootFigures(library="lib", parameters="log Q [60, 40x9]", security="128-bit", keygen_s=1.5,
                      key_bytes=2e9, key_bytes_method="exact", setup_s=0.1, peak_rss_setup=3e9, bits=24.4,
                      levels_left=9, input_level=0, cpu_wall=1.01)
    note = fig.note()
    _has_every_figure(note)
    assert "24.4 bits" in note and "9 levels left" in note and "2.00 GB" in note and "3.00 GB" in note


def test_orion_bootstraps_at_a_toy_boot_preset():
    with _peer("orion") as adapter:
        session, bench, rec = _bootstrap(adapter, "toy-boot-insecure")
        assert isinstance(session, BootOnlySession)
        if rec is None:
            pytest.skip(f"Orion cannot bootstrap small here: {bench.reason}")
        assert rec["status"] == "ok" and rec["median"] > 0 and rec["peak_rss_bytes"] > 0
        _has_every_figure(bench.note)
        assert "INSECURE" in bench.note and "log QP 1546" in bench.note
        # float32 crosses Orion's binding: about 24 bits at best; Lattigo's default circuit keeps 9 levels
        bits = float(bench.note.split(" bits vs the float64 input")[0].rsplit(" ", 1)[1])
        assert bits >= 18.0
        assert "9 levels left (input at level 0)" in bench.note
        other = session.bench("add")
        assert isinstance(other, Unavailable) and "only 'bootstrap'" in other.reason
        assert session.params.levels == 9 and session.params.log_qp == 1546


def test_orion_bootstraps_from_an_ordinary_session_and_rebuilds_it():
    with _peer("orion") as adapter:
        session, bench, rec = _bootstrap(adapter, "toy-insecure")
        if rec is None:
            pytest.skip(f"Orion cannot bootstrap small here: {bench.reason}")
        assert rec["status"] == "ok" and "levels left" in bench.note
        # Lattigo has one scheme per process: the session's own scheme is back after the samples
        metrics = session.metrics()
        assert metrics["precision_bits"] > 15 and metrics["fresh_precision_bits"] > 15


def test_orion_secure_preset_of_another_ring_is_unavailable():
    with _peer("orion"):
        from hetensor.bench.peers.orion_boot import config_for

        reason = config_for(preset_spec("n14"))
        assert isinstance(reason, str) and "N=2^16" in reason
        assert config_for(preset_spec("n16-boot")).log_qp == 1546


def test_desilofhe_says_why_it_cannot_bootstrap_small():
    with _peer("desilofhe") as adapter:
        _, bench, rec = _bootstrap(adapter, "toy-boot-insecure")
        assert rec is None and isinstance(bench, Unavailable)
        assert "N=2^16" in bench.reason and "toy-boot-insecure" in bench.reason


def test_desilofhe_bootstrap_result_small():
    with _peer("desilofhe") as adapter:
        _, bench, rec = _bootstrap(adapter, "toy-insecure")
        if rec is None:
            pytest.skip(f"desilofhe cannot bootstrap small: {bench.reason}")
        _has_every_figure(bench.note)


def test_cli_runs_the_peers_alone():
    from hetensor.bench.cli import parse_config
    from hetensor.bench.runner import _probe_libraries

    cfg, _ = parse_config(["--preset", "toy-boot-insecure", "--ops", "bootstrap", "--peers", "tenseal",
                           "--no-hetensor"])
    assert cfg.hetensor is False and cfg.ops == ["bootstrap"]
    assert "hetensor" not in _probe_libraries(cfg)["probes"]
    cfg, _ = parse_config(["--preset", "toy-boot-insecure", "--ops", "bootstrap"])
    assert cfg.hetensor is True


def test_spec_of_a_bootstrapping_preset_matches_its_chain():
    import hetensor as ht

    spec = preset_spec("toy-boot-insecure")
    ctx = ht.Context.from_preset("toy-boot-insecure")
    assert spec.q_bits == [int(q).bit_length() for q in ctx._engine.q]
    assert spec.p_bits == [int(p).bit_length() for p in ctx._engine.p]  # derived: special_primes == 0
    n16 = preset_spec("n16-boot")
    assert len(n16.q_bits) == n16.levels + 1 and n16.log_qp <= n16.he_standard_max_log_qp
