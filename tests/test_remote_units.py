"""hetensor.remote pieces without a server process: model files, limits, the session store,
the in-process app (fastapi's TestClient) for key-upload limits and session eviction."""

from __future__ import annotations

import numpy as np
import pytest

from hetensor.remote import Limits, load_layers, parse_size, save_layers
from hetensor.remote.sessions import SessionStore, tag_of

from remote_server import toy_context


def test_model_file_round_trip_npz_and_safetensors(tmp_path):
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)), rng.normal(size=5)
    for name in ("m.npz", "m.safetensors"):
        if name.endswith("safetensors"):
            pytest.importorskip("safetensors")
        save_layers(tmp_path / name, {"a.fc": (w, b), "b": (w.T, None)})
        got = load_layers(tmp_path / name)
        assert set(got) == {"a.fc", "b"}
        assert np.array_equal(got["a.fc"].weight, w) and np.array_equal(got["a.fc"].bias, b)
        assert got["b"].bias is None and got["b"].in_features == 5 and got["b"].out_features == 3
        assert list(load_layers(tmp_path / name, ["b"])) == ["b"]


def test_model_file_errors(tmp_path):
    w = np.ones((2, 3))
    save_layers(tmp_path / "x.npz", {"a": (w, None)})
    with pytest.raises(ValueError, match="no layer"):
        load_layers(tmp_path / "x.npz", ["zz"])
    with pytest.raises(ValueError, match="non-finite"):
        save_layers(tmp_path / "y.npz", {"a": (w * np.nan, None)})
    with pytest.raises(ValueError, match="bias has 3 entries"):
        save_layers(tmp_path / "y.npz", {"a": (w, np.ones(3))})
    with pytest.raises(ValueError, match=".safetensors or .npz"):
        save_layers(tmp_path / "y.bin", {"a": (w, None)})
    with pytest.raises(FileNotFoundError):
        load_layers(tmp_path / "missing.npz")
    np.savez(tmp_path / "z.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="no linear layer"):
        load_layers(tmp_path / "z.npz")
    np.savez(tmp_path / "p.npz", **{"a.weight": np.array([object()], dtype=object).reshape(1, 1)})
    with pytest.raises(ValueError):  # pickled arrays are refused, never unpickled
        load_layers(tmp_path / "p.npz")


def test_limits_and_sizes():
    assert parse_size("64M") == 64 << 20 and parse_size("2GiB") == 2 << 30 and parse_size(512) == 512
    assert parse_size("1.5K") == 1536
    for bad in ("", "ten", "-1", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    with pytest.raises(TypeError):
        parse_size(True)
    with pytest.raises(ValueError, match="max_sessions"):
        Limits(max_sessions=0)
    with pytest.raises(ValueError, match="session_ttl"):
        Limits(session_ttl=-1)
    with pytest.raises(ValueError, match="must not exceed"):
        Limits(max_key_bytes=10, max_total_key_bytes=5)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_session_store_expiry_eviction_and_busy():
    clock = Clock()
    store = SessionStore(max_sessions=2, max_total_key_bytes=100, ttl=10, clock=clock)
    a, ev = store.add("ctx-a", 40)
    b, ev2 = store.add("ctx-b", 40)
    assert ev == ev2 == [] and len(store) == 2 and a.id != b.id and len(a.id) >= 22
    assert a.tag == tag_of(a.id) and a.id not in a.tag
    clock.t = 5
    assert store.acquire(a.id) is a  # a is now the most recently used, and busy
    store.release(a)
    c, ev = store.add("ctx-c", 10)  # full by count: b (least recently used) goes
    assert ev == [b.tag] and store.acquire(b.id) is None
    store.release(store.acquire(c.id))
    d, ev = store.add("ctx-d", 95)  # by bytes: a and c go (10 + 95 > 100)
    assert sorted(ev) == sorted([a.tag, c.tag]) and len(store) == 1
    busy = store.acquire(d.id)
    with pytest.raises(RuntimeError, match="busy"):
        store.add("ctx-e", 50)
    clock.t = 100
    assert store.expire() == []  # busy sessions never expire
    store.release(busy)
    clock.t = 200
    assert store.expire() == [d.tag] and len(store) == 0


def test_in_process_app_limits_and_eviction():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from hetensor.remote import RemoteError, RemoteSession, create_app
    from hetensor.remote.weights import LinearWeights

    w = np.random.default_rng(1).uniform(-1, 1, (6, 4))
    layers = {"fc": LinearWeights("fc", w, None)}
    ctx = toy_context(seed=21)
    app = create_app(layers, Limits(max_sessions=1, max_key_bytes=64 << 20, max_total_key_bytes=64 << 20,
                                    allow_insecure=True))
    with TestClient(app) as http:
        first = RemoteSession(http, ctx, rows=4)
        x = np.random.default_rng(2).uniform(-1, 1, (4, 4))
        assert np.abs(first.forward("fc", x) - x @ w.T).max() < 2.0 ** -16
        second = RemoteSession(http, toy_context(seed=22), rows=4)  # evicts the first (max_sessions=1)
        with pytest.raises(RemoteError, match="unknown_session"):
            first.forward("fc", x)
        assert http.get("/health").json()["sessions"] == 1
        second.close()
        assert http.get("/health").json()["sessions"] == 0
    small = create_app(layers, Limits(max_key_bytes=1000, max_total_key_bytes=1000, allow_insecure=True))
    with TestClient(small) as http:
        with pytest.raises(RemoteError, match="too_large"):
            RemoteSession(http, toy_context(seed=23), rows=4)
    strict = create_app(layers, Limits())
    with TestClient(strict) as http:
        with pytest.raises(RemoteError, match="insecure_parameters"):
            RemoteSession(http, toy_context(seed=24), rows=4)


def test_cli_refuses_bad_model_files_clearly(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "hetensor.remote", "serve", str(tmp_path / "missing.npz")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "does not exist" in res.stderr
    np.savez(tmp_path / "m.npz", **{"fc.weight": np.ones((2, 3))})
    res = subprocess.run([sys.executable, "-m", "hetensor.remote", "serve", str(tmp_path / "m.npz"),
                          "--layers", "nope", "--max-body-bytes", "12Q"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "12Q" in res.stderr


def test_console_script_is_installed():
    import shutil
    import subprocess

    exe = shutil.which("hetensor")
    if exe is None:
        pytest.skip("the hetensor console script is not on PATH (pip install the package)")
    res = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "--max-key-bytes" in res.stdout


def test_encrypt_at_a_lower_level():
    from conftest import bits

    ctx = toy_context(seed=31)
    x = np.random.default_rng(3).uniform(-1, 1, (8, 24))
    for layout in (None, "matrix"):
        for level in (0, 1, ctx.fresh_level):
            ct = ctx.encrypt(x, symmetric=True, layout=layout, level=level)
            assert ct.level == level
            assert bits(ctx.decrypt(ct), x) >= 25
    low, top = ctx.encrypt(x, symmetric=True, level=0), ctx.encrypt(x, symmetric=True)
    assert len(low.to_bytes()) * (ctx.fresh_level + 1) <= len(top.to_bytes()) * 1.05  # seeded at every level
    with pytest.raises(ValueError, match="level must be in"):
        ctx.encrypt(x, level=ctx.fresh_level + 1)
    with pytest.raises(TypeError, match="integer"):
        ctx.encrypt(x, level=1.5)
