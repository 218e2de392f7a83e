"""Start the real ``hetensor serve`` in a subprocess on 127.0.0.1 (shared by tests/test_remote_*.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import List, Optional

import numpy as np

import hetensor as ht
from hetensor.remote import save_layers

# The toy ring of the remote tests: N = 2^12 (2048 slots), 40-bit scale, insecure.
TOY = dict(log_n=12, levels=3, scale_bits=40, first_prime_bits=55, dnum=2, special_prime_bits=55,
           allow_insecure=True)


def toy_context(seed: Optional[int] = None) -> ht.Context:
    """A client context on the toy ring (a seed makes the keys reproducible)."""
    return ht.Context.from_params(**TOY, seed=seed)


def toy_model(path: str, rng: np.random.Generator) -> dict:
    """A model file with two layers: ``enc.up`` 24 -> 40 with bias, ``enc.down`` 40 -> 24 without."""
    layers = {"enc.up": (rng.uniform(-0.5, 0.5, (40, 24)), rng.uniform(-0.5, 0.5, 40)),
              "enc.down": (rng.uniform(-0.5, 0.5, (24, 40)), None)}
    save_layers(path, layers)
    return layers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m hetensor.remote serve MODEL`` on a free port; JSON logs collected in a file."""

    def __init__(self, model: str, workdir: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"server-{self.port}.log")
        self.tmp = os.path.join(workdir, f"tmp-{self.port}")
        os.makedirs(self.tmp, exist_ok=True)
        env = dict(os.environ, TMPDIR=self.tmp, OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "hetensor.remote", "serve", model, "--port", str(self.port),
               "--allow-insecure", "--threads", "1", *args]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._wait_up()

    def _wait_up(self) -> None:
        import httpx

        # Start-up imports the core and the web stack: allow a slow, shared machine plenty of time.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.logs_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer /health in 120 s:\n{self.logs_text()}")

    def health(self) -> dict:
        import httpx

        r = httpx.get(self.url + "/health", timeout=10)
        r.raise_for_status()
        return r.json()

    def logs_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_records(self) -> List[dict]:
        """Every log line as JSON (a line that is not JSON fails the caller's test)."""
        return [json.loads(line) for line in self.logs_text().splitlines() if line.strip()]

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)
