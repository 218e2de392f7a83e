"""Torch twins (hetensor.torch) that the nn tests build alike: a LoRA linear layer into attention.

Test-only. Import it after ``pytest.importorskip("torch")``. The draws from torch's generator
happen in one fixed order (the layers' initialisation, then each adapter's B), so a seed gives
the same weights in every test that uses it.
"""

from __future__ import annotations

import torch

from hetensor import torch as htt


def lora_into_attention(attention, d: int, heads: int, seed: int, q_gain=None) -> torch.nn.Sequential:
    """LoRALinear(4, d, rank 2) into ``attention(d, heads, lora_rank=2)``, float64, after
    ``torch.manual_seed(seed)``: every adapter's B drawn from N(0, 0.3^2) (so the adapters are not
    zero), and the query's base weight times ``q_gain`` when given (spread attention scores)."""
    torch.manual_seed(seed)
    l1 = htt.LoRALinear(4, d, rank=2)
    att = attention(d, heads, lora_rank=2)
    for m in (l1, att.q, att.k, att.v):
        with torch.no_grad():
            m.lora_B.normal_(0, 0.3)
    if q_gain is not None:
        with torch.no_grad():
            att.q.base.weight.mul_(q_gain)
    return torch.nn.Sequential(l1, att).double()
