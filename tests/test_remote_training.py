"""A LoRA fine-tuning step through a remote layer (real server in a subprocess, torch client).

The model: x -> [local frozen W1 + LoRA (A, B)] -> tanh -> [remote frozen W2] -> loss.
The remote layer's forward and its backward (dL/dh = g W2) run encrypted on
the server; the adapters' gradients depend on both. They must match an
all-local float64 computation, and so must the adapters after an SGD step.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
torch = pytest.importorskip("torch")

from hetensor.remote import RemoteLinear, RemoteSession, export_linear, to_hybrid  # noqa: E402

from conftest import bits  # noqa: E402
from remote_server import Server, toy_context  # noqa: E402

MIN_BITS = 14


class LoRA(torch.nn.Module):
    def __init__(self, base: torch.nn.Linear, rank: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.base = base
        self.base.requires_grad_(False)
        self.A = torch.nn.Parameter(torch.rand(rank, base.in_features, generator=g, dtype=torch.float64) - 0.5)
        self.B = torch.nn.Parameter(torch.rand(base.out_features, rank, generator=g, dtype=torch.float64) - 0.5)

    def forward(self, x):
        return self.base(x) + (x @ self.A.T) @ self.B.T


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = LoRA(torch.nn.Linear(16, 32, dtype=torch.float64), rank=2, seed=1)
        self.head = torch.nn.Linear(32, 8, dtype=torch.float64)
        self.head.requires_grad_(False)

    def forward(self, x):
        return self.head(torch.tanh(self.l1(x)))


def _step(net, x, t):
    opt = torch.optim.SGD([net.l1.A, net.l1.B], lr=0.1)
    opt.zero_grad()
    y = net(x)
    loss = ((y - t) ** 2).sum()
    loss.backward()
    grads = [net.l1.A.grad.detach().clone(), net.l1.B.grad.detach().clone()]
    opt.step()
    return y.detach(), grads, [net.l1.A.detach().clone(), net.l1.B.detach().clone()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("remote-train")
    path = str(d / "head.npz")
    export_linear(Net(), ["head"], path)  # the model owner's file
    srv = Server(path, str(d))
    yield srv
    srv.stop()


def test_lora_step_with_remote_head_matches_local(server):
    g = torch.Generator().manual_seed(5)
    x = torch.rand(12, 16, generator=g, dtype=torch.float64) * 2 - 1
    t = torch.rand(12, 8, generator=g, dtype=torch.float64) * 2 - 1

    local = Net()
    y_ref, grads_ref, after_ref = _step(local, x, t)

    hybrid = Net()
    w_head = hybrid.head.weight.detach().clone()
    with RemoteSession(server.url, toy_context(seed=11), rows=8) as session:
        assert to_hybrid(hybrid, session, remote=["head"]) == ["head"]
        assert isinstance(hybrid.head, RemoteLinear)
        assert not any(p is not None and p.shape == w_head.shape for p in hybrid.parameters())
        y, grads, after = _step(hybrid, x, t)
        # 12 rows in blocks of 8: 2 forward and 2 backward requests
        assert session.traffic.requests == 4
        # the remote products alone, against float64
        gy = np.random.default_rng(1).uniform(-1, 1, (8, 8))
        assert bits(session.backward("head", gy), gy @ w_head.numpy()) >= 16
    assert bits(y.numpy(), y_ref.numpy()) >= 16
    for got, ref in zip(grads, grads_ref):
        assert bits(got.numpy(), ref.numpy()) >= MIN_BITS
    for got, ref in zip(after, after_ref):
        assert bits(got.numpy(), ref.numpy()) >= MIN_BITS
    # the step changed the adapters by more than the error: the comparison is not vacuous
    assert float((after_ref[0] - Net().l1.A.detach()).abs().max()) > 2.0 ** -8


def test_remote_linear_checks_its_input(server):
    with RemoteSession(server.url, toy_context(seed=12), rows=4, backward=False) as session:
        layer = RemoteLinear(session, "head")
        with pytest.raises(ValueError, match=r"\(\.\.\., 32\)"):
            layer(torch.zeros(3, 31, dtype=torch.float64))
        with pytest.raises(TypeError, match="floating-point"):
            layer(torch.zeros(3, 32, dtype=torch.int64))
        with pytest.raises(ValueError, match="does not use layer"):
            RemoteLinear(session, "missing")
        with pytest.raises(ValueError, match="32 -> 8 on the server"):
            to_hybrid(_with_head(torch.nn.Linear(31, 8)), session, remote=["head"])
        with pytest.raises(TypeError, match="not a torch.nn.Linear"):
            to_hybrid(_with_head(torch.nn.ReLU()), session, remote=["head"])


def _with_head(lin):
    m = torch.nn.Module()
    m.head = lin
    return m
