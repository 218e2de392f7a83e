"""The benchmark CLI runs end to end on the smallest preset and writes JSON of the documented schema.

No timing assertions: figures depend on the machine. Peers that are not
installed (or do not import on this Python) must be reported, not fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hetensor

OPS = ["ntt_limb", "encrypt", "decrypt", "add", "mul_relin_rescale", "rotate", "keygen_public"]
PEERS = ["openfhe", "tenseal"]


def _run(args, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    pkg_root = str(Path(hetensor.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "hetensor.bench", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def bench_doc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "out.json"
    md = tmp / "out.md"
    proc = _run(["--preset", "toy-insecure", "--repeat", "1", "--warmup", "0", "--ops", ",".join(OPS),
                 "--peers", ",".join(PEERS), "--json", str(out), "--markdown", str(md), "--no-progress"], tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "toy-insecure" in proc.stdout  # the report table was printed
    assert "| op | hetensor ms |" in md.read_text()
    return json.loads(out.read_text())


def test_top_level_schema(bench_doc):
    for key in ("schema", "created", "command", "machine", "settings", "libraries", "runs", "skipped", "reference"):
        assert key in bench_doc, key
    assert bench_doc["schema"] == "hetensor.bench/1"
    m = bench_doc["machine"]
    for key, typ in (("cpu_model", str), ("cores_logical", int), ("cores_usable", int), ("python", str),
                     ("hetensor_version", str), ("cpu_flags", list), ("ntt_peak_model", str)):
        assert isinstance(m[key], typ), key
    s = bench_doc["settings"]
    assert s["presets"] == ["toy-insecure"] and s["repeat"] == 1 and s["ops"] == OPS


def test_every_listed_library_has_a_status(bench_doc):
    libs = bench_doc["libraries"]
    assert libs["hetensor"]["status"] == "ok"
    for peer in PEERS:
        assert libs[peer]["status"] in {"ok", "not_installed", "not_importable", "error"}
        if libs[peer]["status"] != "ok":
            assert libs[peer]["reason"]  # says why
        if libs[peer]["status"] == "not_installed":  # and how to install it, once
            assert "hetensor[bench]" in libs[peer]["reason"] and libs[peer]["reason"].count("pip install") == 2


def test_runs_and_op_records(bench_doc):
    (run,) = bench_doc["runs"]
    assert run["preset"] == "toy-insecure" and run["threads"] == 1 and run["device"] == "cpu"
    for key in ("params", "results", "metrics", "ratios"):
        assert isinstance(run[key], dict)
    hp = run["params"]["hetensor"]
    assert hp["ring_degree"] == 2 ** hp["log_n"] and isinstance(hp["q_bits"], list)
    ran = [lib for lib, p in bench_doc["libraries"].items() if p["status"] == "ok"]
    assert set(run["results"]) == set(ran)
    for lib, recs in run["results"].items():
        assert list(recs) == OPS, lib
        for op, rec in recs.items():
            assert rec["status"] in {"ok", "unavailable", "error"}
            if rec["status"] == "ok":
                assert rec["unit"] == "s"
                for key in ("median", "min", "max", "mean"):
                    assert isinstance(rec[key], float) and rec[key] >= 0, (lib, op, key)
                assert rec["min"] <= rec["median"] <= rec["max"]
                assert len(rec["samples"]) == rec["repeat"] == 1
                assert isinstance(rec["peak_rss_bytes"], int) and isinstance(rec["peak_delta_bytes"], int)
            else:
                assert isinstance(rec["reason"], str) and rec["reason"]
    ours = run["results"]["hetensor"]
    assert all(ours[op]["status"] == "ok" for op in OPS if op != "keygen_public")
    assert ours["keygen_public"]["status"] in {"ok", "unavailable"}
    for lib, metrics in run["metrics"].items():
        for name, rec in metrics.items():
            assert set(rec) == {"value", "unit"} and isinstance(rec["unit"], str)
    hm = run["metrics"]["hetensor"]
    assert hm["ciphertext_bytes"]["value"] > 0 and hm["ciphertext_bytes"]["unit"] == "bytes"
    assert hm["precision_bits"]["unit"] == "bits" and hm["precision_bits"]["value"] > 10
    assert hm["ntt_limb_butterflies_per_s"]["value"] > 0
    for peer, ratios in run["ratios"].items():
        assert all(isinstance(v, float) and v > 0 for v in ratios.values())


def test_cuda_device_is_skipped_with_a_reason(tmp_path):
    if hetensor.cuda_available():
        pytest.skip("a CUDA device is present")
    out = tmp_path / "cuda.json"
    proc = _run(["--device", "cuda:0", "--preset", "toy-insecure", "--repeat", "1", "--ops", "add",
                 "--json", str(out), "--no-progress", "--quiet"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]  # nothing could run: a clear error
    assert "cuda:0" in proc.stderr and "not available" in proc.stderr and "no requested device" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["runs"] == [] and doc["skipped"][0]["device"] == "cuda:0"
    # next to the CPU, the GPU is skipped with its reason and the CPU run is the result
    proc = _run(["--device", "cpu,cuda:0", "--preset", "toy-insecure", "--repeat", "1", "--ops", "add",
                 "--json", str(out), "--no-progress", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [r["device"] for r in doc["runs"]] == ["cpu"] and doc["skipped"][0]["device"] == "cuda:0"


def test_bad_arguments_say_what_is_valid(tmp_path):
    proc = _run(["--ops", "bogus", "--preset", "toy-insecure"], tmp_path)
    assert proc.returncode == 2 and "valid ops" in proc.stderr
    proc = _run(["--preset", "n99"], tmp_path)
    assert proc.returncode == 2 and "choose from" in proc.stderr


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plot.png"
    proc = _run(["--preset", "toy-insecure", "--repeat", "1", "--warmup", "0", "--ops", "add",
                 "--plot", str(out), "--no-progress", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bootstrap_pair_op_on_the_toy_ring(tmp_path):
    """The complex-packed bootstrap op (issue 10) at toy-boot-insecure: timed, with its precision in the note."""
    out = tmp_path / "boot.json"
    proc = _run(["--preset", "toy-insecure", "--repeat", "1", "--warmup", "0", "--ops", "bootstrap_pair",
                 "--json", str(out), "--no-progress", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    assert "bootstrap_pair" in text and "two real vectors in one bootstrap" in text
    bits = float(text.split(" bits (worst of the two)")[0].rsplit("; ", 1)[1])
    assert bits >= 22
