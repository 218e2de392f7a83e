"""Hybrid deployment: one remote linear layer per request, hetensor against Concrete ML's matmul.

    flock /tmp/hetensor-heavy.lock python bench/remote_linear.py --preset n14 --widths 384 768 \
        --rows 1 16 --peer-rows 1 --repeats 2 --peer-repeats 1 --json bench/results-remote-n14.json

For each width d (a d x d layer with bias, torch's initialisation; inputs
uniform in [-1, 1]) and ``rows`` tokens per request:

- hetensor: the real server (``python -m hetensor.remote serve`` in a
  subprocess on 127.0.0.1) and the client (:class:`hetensor.remote.RemoteSession`):
  latency per request as the client sees it (encrypt, HTTP, server product,
  decrypt), the server's share, bytes of the request and response bodies per
  token, the key upload, and the precision against float64 in bits.
- concrete-ml-extensions (Zama; what Concrete ML's hybrid models call), when
  installed, in the same run: ``encrypt_matrix`` / ``matrix_multiplication`` /
  ``decrypt_matrix`` with its default parameters on the same shapes, inputs and
  weights quantized to 8 bits (unsigned, zero points corrected in the clear, as
  its integer product requires), bytes of the serialized encrypted input and
  result, the compression key, and the precision of the dequantized result
  against the same float64 reference. Called in-process (no HTTP): its
  latency excludes transport.

Precision: bits = -log2(max |got - x W^T - b|) over the request.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

import hetensor as ht
from hetensor.remote import RemoteSession, save_layers



class _Server:
    """``python -m hetensor.remote serve`` on a free port of 127.0.0.1 (logs to a file in ``workdir``);
    toy presets accepted, so that the script can be tried quickly."""

    def __init__(self, model: str, workdir: str, threads: int) -> None:
        import socket
        import subprocess

        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(os.path.join(workdir, "server.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "hetensor.remote", "serve", model, "--port",
                                      str(self.port), "--threads", str(threads), "--max-key-bytes", "16G",
                                      "--max-total-key-bytes", "16G", "--allow-insecure"],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ, TMPDIR=workdir))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start (see server.log)")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._log.close()


def _bits(got: np.ndarray, ref: np.ndarray) -> float:
    err = float(np.max(np.abs(got - ref)))
    return math.inf if err == 0 else -math.log2(err)


def layer(d: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    bound = 1 / math.sqrt(d)
    return rng.uniform(-bound, bound, (d, d)), rng.uniform(-bound, bound, d)


def bench_hetensor(preset: str, widths: List[int], rows_list: List[int], repeats: int,
                   threads: int) -> List[Dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.npz")
        layers = {f"fc{w}": layer(w, w) for w in widths}
        save_layers(path, layers)
        srv = _Server(path, d, threads)
        try:
            ht.set_num_threads(threads)
            for w, rows in [(w, r) for w in widths for r in rows_list]:
                name = f"fc{w}"
                W, b = layers[name]
                ctx = ht.Context.from_preset(preset)
                t0 = time.perf_counter()
                s = RemoteSession(srv.url, ctx, rows=rows, layers=[name], backward=False)
                t_session = time.perf_counter() - t0
                rng = np.random.default_rng(100 + w)
                s.forward(name, rng.uniform(-1, 1, (rows, w)))  # warm-up: the server encodes W once
                s.traffic.__init__(key_bytes=s.traffic.key_bytes)
                lat, bits = [], []
                for _ in range(repeats):
                    x = rng.uniform(-1, 1, (rows, w))
                    t1 = time.perf_counter()
                    y = s.forward(name, x)
                    lat.append(time.perf_counter() - t1)
                    bits.append(_bits(y, x @ W.T + b))
                t = s.traffic
                out.append({"lib": "hetensor", "preset": preset, "width": w, "rows": rows,
                            "latency_s": lat, "server_s_mean": t.server_seconds / repeats,
                            "request_bytes": t.bytes_sent // repeats, "response_bytes": t.bytes_received // repeats,
                            "bytes_per_token": t.bytes_per_token(), "key_bytes": t.key_bytes,
                            "session_setup_s": t_session, "bits_min": min(bits)})
                s.close()
                print(json.dumps(out[-1]), flush=True)
        finally:
            srv.stop()
    return out


def _quant_u8(a: np.ndarray) -> tuple:
    lo, hi = float(a.min()), float(a.max())
    scale = (hi - lo) / 255 or 1.0
    return np.clip(np.round((a - lo) / scale), 0, 255).astype(np.uint64), scale, lo


def bench_concrete(widths: List[int], rows_list: List[int], repeats: int) -> List[Dict[str, Any]]:
    try:
        import concrete_ml_extensions as cml
    except ImportError:
        print("concrete-ml-extensions is not installed: skipped", file=sys.stderr)
        return []
    params = cml.MatmulCryptoParameters.deserialize(cml.default_params())
    t0 = time.perf_counter()
    pkey, ckey = cml.create_private_key(params)
    t_keys = time.perf_counter() - t0
    key_bytes = len(ckey.serialize())
    poly = int(json.loads(cml.default_params())["polynomial_size"])
    out = []
    for w, rows in [(w, r) for w in widths for r in rows_list]:
        W, b = layer(w, w)
        # weights: symmetric 8-bit, shifted to unsigned (the product takes unsigned integers)
        sw = float(np.abs(W).max()) / 127
        wi = np.round(W.T / sw).astype(np.int64)  # (in, out)
        wq = (wi + 128).astype(np.uint64)
        rng = np.random.default_rng(100 + w)
        lat, bits, bits_int, req, resp = [], [], [], [], []
        for _ in range(repeats):
            x = rng.uniform(-1, 1, (rows, w))
            xq, sx, x0 = _quant_u8(x)
            t1 = time.perf_counter()
            enc = cml.encrypt_matrix(pkey=pkey, crypto_params=params, data=xq)
            blob = enc.serialize()
            res = cml.matrix_multiplication(encrypted_matrix=cml.EncryptedMatrix.deserialize(blob), data=wq,
                                            compression_key=ckey)
            rblob = res.serialize()
            nv = w % poly or poly
            got = cml.decrypt_matrix(cml.CompressedResultEncryptedMatrix.deserialize(rblob), pkey, params, nv)
            lat.append(time.perf_counter() - t1)
            req.append(len(blob))
            resp.append(len(rblob))
            exact = xq.astype(np.int64) @ wq.astype(np.int64)
            bits_int.append(_bits(np.asarray(got, dtype=np.float64) / max(1, float(np.abs(exact).max())),
                                  exact / max(1, float(np.abs(exact).max()))))
            # dequantize: x = sx xq + x0, W^T = sw wi; the zero-point terms use sums known in the clear
            prod = np.asarray(got, dtype=np.float64) - 128.0 * xq.astype(np.float64).sum(1, keepdims=True)
            y = sx * sw * prod + x0 * sw * wi.sum(0)[None, :] + b
            bits.append(_bits(y, x @ W.T + b))
        out.append({"lib": "concrete-ml-extensions", "width": w, "rows": rows, "latency_s": lat,
                    "request_bytes": int(np.mean(req)), "response_bytes": int(np.mean(resp)),
                    "bytes_per_token": (np.mean(req) + np.mean(resp)) / rows, "key_bytes": key_bytes,
                    "keygen_s": t_keys, "bits_min": min(bits), "bits_integer_relative_min": min(bits_int),
                    "quantization": "8-bit inputs and weights"})
        print(json.dumps(out[-1]), flush=True)
    return out


def table(rec: Dict[str, Any]) -> str:
    """The records of one run as a markdown table (what bench/RESULTS.md shows)."""
    lines = ["| library | width | tokens/request | latency per request (s) | server share (s) | request B | "
             "response B | bytes/token | key upload B | bits vs float64 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec.get("hetensor", []) + rec.get("concrete", []):
        lat = ", ".join(f"{t:.2f}" for t in r["latency_s"])
        server = f"{r['server_s_mean']:.2f}" if "server_s_mean" in r else "(in-process)"
        name = f"hetensor {r.get('preset', '')}" if r["lib"] == "hetensor" else "concrete-ml-extensions (8-bit)"
        lines.append(f"| {name} | {r['width']} | {r['rows']} | {lat} | {server} | {r['request_bytes']} | "
                     f"{r['response_bytes']} | {r['bytes_per_token']:.0f} | {r['key_bytes']} | {r['bits_min']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="n14")
    p.add_argument("--widths", type=int, nargs="+", default=[384, 768])
    p.add_argument("--rows", type=int, nargs="+", default=[16], help="tokens per request (one run each)")
    p.add_argument("--peer-rows", type=int, nargs="+", default=None, help="tokens per request of the peer")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peer-repeats", type=int, default=None, help="requests per width for the peer (default --repeats)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--table", default=None, help="print the markdown table of a JSON written by --json, and exit")
    a = p.parse_args()
    if a.table:
        with open(a.table) as f:
            print(table(json.load(f)))
        return
    rec: Dict[str, Any] = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                       "load_avg_start": os.getloadavg()},
                           "args": vars(a)}
    rec["hetensor"] = bench_hetensor(a.preset, a.widths, a.rows, a.repeats, a.threads)
    rec["concrete"] = [] if a.no_peer else bench_concrete(a.widths, a.peer_rows or a.rows, a.peer_repeats or a.repeats)
    rec["machine"]["load_avg_end"] = os.getloadavg()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rec, f, indent=1)
    print(table(rec))


if __name__ == "__main__":
    main()
