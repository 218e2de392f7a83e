"""Live contexts by key fingerprint, so that unpickled tensors find theirs.

A pickled CipherTensor carries its ciphertexts and the key id of the context
that encrypted it, not the context: unpickling binds it to a live context of
this process with the same keys (load that context first). Contexts holding
the secret key are preferred, then the most recent.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional

_by_key: Dict[int, List[weakref.ref]] = {}
_by_params: Dict[int, List[weakref.ref]] = {}


def register(ctx: Any, key_id: int, param_hash: int) -> None:
    for table, k in ((_by_key, key_id), (_by_params, param_hash)):
        refs = [r for r in table.get(k, []) if r() is not None]
        refs.append(weakref.ref(ctx))
        table[k] = refs


def find(*, key_id: Optional[int] = None, param_hash: Optional[int] = None) -> Optional[Any]:
    refs = _by_key.get(key_id, []) if key_id is not None else _by_params.get(param_hash, [])
    live = [r() for r in refs if r() is not None]
    if not live:
        return None
    private = [c for c in live if not c.is_public]
    return (private or live)[-1]
