"""Encrypting a batch of sequences as one token matrix."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np


def encrypt_tokens(ctx: Any, x: Any, *, seq_len: Optional[int] = None) -> Tuple[Any, int]:
    """Encrypt ``x`` ((batch, seq_len, features), or (tokens, features) with
    ``seq_len``) as one (batch * seq_len, features) matrix; returns it and seq_len.
    A batch of sequences shares the slots of each ciphertext."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 3:
        b, t, d = arr.shape
        if seq_len is not None and seq_len != t:
            raise ValueError(f"seq_len={seq_len} but the input has {t} tokens per sequence")
        arr, seq_len = arr.reshape(b * t, d), t
    elif arr.ndim == 2:
        seq_len = seq_len or 1
        if arr.shape[0] % seq_len:
            raise ValueError(f"{arr.shape[0]} rows do not split into sequences of {seq_len}")
    else:
        raise ValueError(f"expected (batch, seq_len, features) or (tokens, features), not {arr.shape}")
    return ctx.encrypt(arr, layout="matrix"), int(seq_len)
