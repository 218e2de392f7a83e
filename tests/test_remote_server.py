"""The real server (``hetensor serve`` in a subprocess on 127.0.0.1) driven by the client.

Inference and backward products against float64, two clients with different
keys at once, malformed and oversized requests, clients killed mid-request,
structured logs without secrets, graceful shutdown. Toy ring (N = 2^12).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import hetensor as ht  # noqa: E402
from hetensor.remote import RemoteError, RemoteSession  # noqa: E402
from hetensor.remote import wire  # noqa: E402

from conftest import bits  # noqa: E402
from remote_server import Server, toy_context, toy_model  # noqa: E402

ROWS = 8
# A CPMM at a 40-bit scale, results at level 0: about 2^-20 absolute error on values of size ~3.
MIN_BITS = 16


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("remote")
    path = str(d / "model.npz")
    return path, toy_model(path, np.random.default_rng(14)), str(d)


@pytest.fixture(scope="module")
def server(model):
    path, _, d = model
    srv = Server(path, d, "--max-body-bytes", "8M", "--max-key-bytes", "64M", "--body-timeout", "5")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def session(server):
    s = RemoteSession(server.url, toy_context(seed=1), rows=ROWS)
    yield s
    s.close()


def test_model_description_has_shapes_not_weights(server, model):
    info = httpx.get(server.url + wire.model_path()).json()
    assert info["layers"] == {"enc.up": {"in_features": 24, "out_features": 40, "bias": True},
                              "enc.down": {"in_features": 40, "out_features": 24, "bias": False}}
    assert "weight" not in json.dumps(info)


def test_forward_matches_float64(session, model):
    _, layers, _ = model
    w, b = layers["enc.up"]
    x = np.random.default_rng(1).uniform(-1, 1, (13, 24))  # two blocks of 8 rows, the second padded
    got = session.forward("enc.up", x)
    assert bits(got, x @ w.T + b) >= MIN_BITS
    w2, _ = layers["enc.down"]
    h = np.random.default_rng(2).uniform(-1, 1, (ROWS, 40))
    assert bits(session.forward("enc.down", h), h @ w2.T) >= MIN_BITS


def test_backward_matches_float64(session, model):
    _, layers, _ = model
    w, _ = layers["enc.up"]
    g = np.random.default_rng(3).uniform(-1, 1, (5, 40))
    assert bits(session.backward("enc.up", g), g @ w) >= MIN_BITS


def test_levels_trimmed_both_ways_and_seeded_uploads(server, session, model):
    w, b = model[1]["enc.up"]
    xn = np.random.default_rng(4).uniform(-1, 1, (ROWS, 24))
    ctx = toy_context(seed=5)
    with RemoteSession(server.url, ctx, rows=ROWS, layers=["enc.up"], backward=False, level=ctx.fresh_level) as s:
        x = s.encrypt(xn)
        assert x.level == ctx.fresh_level == 3
        y_full = s.encrypted("enc.up", x, level=None)
        y0 = s.encrypted("enc.up", x, level=0)
        assert y_full.level == 2 and y0.level == 0
        assert bits(ctx.decrypt(y0), xn @ w.T + b) >= MIN_BITS
        # a level-0 result has one limb per polynomial instead of three
        assert len(ht.to_bytes(y0)) * 3 <= len(ht.to_bytes(y_full)) * 1.05
        with pytest.raises(RemoteError, match="above it"):
            s.encrypted("enc.up", x, level=3)
    # the default session encrypts at level 1 (two limbs instead of four), seeded (c1 as a seed: half)
    x1 = session.encrypt(xn)
    assert x1.level == 1
    assert len(ht.to_bytes(x1)) * 2 <= len(ht.to_bytes(x)) * 1.05
    assert len(ht.to_bytes(x1)) < 0.6 * len(ht.to_bytes(x1, compress=False))


def test_two_concurrent_clients_with_different_keys(server, model):
    _, layers, _ = model
    w, b = layers["enc.up"]
    a = RemoteSession(server.url, toy_context(seed=2), rows=ROWS, layers=["enc.up"], backward=False)
    c = RemoteSession(server.url, toy_context(seed=3), rows=ROWS, layers=["enc.up"], backward=False)
    try:
        assert a.session_id != c.session_id
        xs = {id(a): np.random.default_rng(5).uniform(-1, 1, (20, 24)),
              id(c): np.random.default_rng(6).uniform(-1, 1, (20, 24))}
        out, errors = {}, []

        def run(s):
            try:
                out[id(s)] = s.forward("enc.up", xs[id(s)])
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(s,)) for s in (a, c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for s in (a, c):
            assert bits(out[id(s)], xs[id(s)] @ w.T + b) >= MIN_BITS
        # a ciphertext of one client's keys is refused in the other's session: nothing crosses
        x_a = a.encrypt(xs[id(a)][:ROWS])
        r = httpx.post(server.url + wire.product_path(c.session_id, "enc.up", "forward"),
                       content=ht.to_bytes(x_a))
        assert r.status_code == 400 and "keys" in r.json()["detail"]
    finally:
        a.close()
        c.close()


def test_malformed_requests_are_refused_and_server_stays_up(server, session, model):
    sid = session.session_id
    url = server.url + wire.product_path(sid, "enc.up", "forward")
    r = httpx.post(url, content=b"not a ciphertext at all")
    assert r.status_code == 400 and r.json()["error"] == "bad_request" and "ciphertext" in r.json()["detail"]
    # a ciphertext of the wrong width
    x = session.ctx.encrypt(np.zeros((ROWS, 23)), symmetric=True, layout="matrix", level=1)
    r = httpx.post(url, content=ht.to_bytes(x))
    assert r.status_code == 400 and "(rows, 24)" in r.json()["detail"]
    # flat packing instead of a matrix
    r = httpx.post(url, content=ht.to_bytes(session.ctx.encrypt(np.zeros((ROWS, 24)), level=1)))
    assert r.status_code == 400 and "layout='matrix'" in r.json()["detail"]
    r = httpx.post(url, content=ht.to_bytes(session.ctx.encrypt(np.zeros((ROWS, 24)), layout="matrix", level=0)))
    assert r.status_code == 400 and "level 0" in r.json()["detail"]
    assert httpx.post(server.url + wire.product_path(sid, "nope", "forward"), content=b"x").status_code == 404
    assert httpx.post(server.url + wire.product_path("0" * 22, "enc.up", "forward"), content=b"x").status_code == 404
    assert httpx.post(url, content=b"x", params={"level": "-1"}).status_code == 422
    r = httpx.post(url, content=b"\0" * (9 << 20))
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = httpx.post(server.url + wire.sessions_path(), content=b"HETENSOR" + b"\0" * 100)
    assert r.status_code == 400 and r.json()["error"] == "bad_keys"
    # the secret key is refused (and the message says it must be treated as exposed)
    secret = session.ctx.to_bytes(include_secret_key=True)
    r = httpx.post(server.url + wire.sessions_path(), content=secret)
    assert r.status_code == 400 and r.json()["error"] == "secret_key_sent"
    assert server.health()["status"] == "ok"
    w, b = model[1]["enc.up"]
    xx = np.random.default_rng(7).uniform(-1, 1, (ROWS, 24))
    assert bits(session.forward("enc.up", xx), xx @ w.T + b) >= MIN_BITS


def _half_request(port: int, path: str, declared: int, sent: bytes) -> None:
    """Send the headers and part of a body, then drop the connection (a client killed mid-request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Length: {declared}\r\n\r\n").encode() + sent)


def test_client_killed_mid_request(server, session, model):
    before = server.health()
    ctx = toy_context(seed=9)
    keys = ctx.public().to_bytes()
    _half_request(server.port, wire.sessions_path(), len(keys), keys[: len(keys) // 3])
    x = session.encrypt(np.ones((ROWS, 24)))
    data = ht.to_bytes(x)
    path = wire.product_path(session.session_id, "enc.up", "forward")
    _half_request(server.port, path, len(data), data[: len(data) // 2])
    _half_request(server.port, path, len(data), data)  # whole body, gone before the answer
    # the server is up, no session was made or lost, no key upload left on disk
    w, b = model[1]["enc.up"]
    xx = np.random.default_rng(8).uniform(-1, 1, (ROWS, 24))
    assert bits(session.forward("enc.up", xx), xx @ w.T + b) >= MIN_BITS
    after = server.health()
    assert after["sessions"] == before["sessions"] and after["key_bytes"] == before["key_bytes"]
    assert not [f for f in os.listdir(server.tmp) if f.startswith("hetensor-keys-")]


def test_logs_are_json_and_hold_no_secrets(server, session):
    records = server.log_records()
    events = {r["event"] for r in records}
    assert {"startup", "session_opened", "product", "refused"} <= events
    text = server.logs_text()
    assert session.session_id not in text
    products = [r for r in records if r["event"] == "product"]
    assert all(set(r) >= {"session", "layer", "direction", "bytes_in", "bytes_out", "seconds"} for r in products)


def test_graceful_shutdown(model):
    path, _, d = model
    srv = Server(path, d)
    s = RemoteSession(srv.url, toy_context(seed=4), rows=ROWS, layers=["enc.down"], backward=False)
    assert srv.health()["sessions"] == 1
    code = srv.stop()
    assert code == 0
    events = [r["event"] for r in srv.log_records()]
    assert events[-1] == "shutdown"
    assert [r for r in srv.log_records() if r["event"] == "shutdown"][0]["sessions_dropped"] == 1
    with pytest.raises(httpx.ConnectError):
        s.forward("enc.down", np.zeros((1, 40)))


def _read_response(sock: socket.socket) -> str:
    """Read one whole HTTP response: headers and body may arrive in separate segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_stalled_body_is_dropped(server, session):
    # the fixture's server waits --body-timeout 5 s for the next chunk, then answers 408
    data = ht.to_bytes(session.encrypt(np.ones((ROWS, 24))))
    path = wire.product_path(session.session_id, "enc.up", "forward")
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:1000])
        answer = _read_response(s)
    assert answer.startswith("HTTP/1.1 408") and "body_timeout" in answer
    assert server.health()["status"] == "ok"
