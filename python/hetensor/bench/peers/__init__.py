"""Adapters for the CKKS libraries hetensor is compared with, one module per library.

Each adapter imports its library only in ``probe`` / ``open``, so this package
imports without any peer; ``pip install 'hetensor[bench]'`` installs them
(Orion by hand, see ``INSTALL_HINTS``).
"""

from __future__ import annotations

from typing import Dict, List

from .base import Adapter


def known_peers() -> List[str]:
    """Names accepted by ``--peers``."""
    return ["openfhe", "tenseal", "desilofhe", "orion"]


def make_adapter(name: str) -> Adapter:
    """The adapter for a peer name (imports only that adapter's module)."""
    if name == "tenseal":
        from .tenseal_peer import TensealAdapter

        return TensealAdapter()
    if name == "desilofhe":
        from .desilofhe_peer import DesilofheAdapter

        return DesilofheAdapter()
    if name == "orion":
        from .orion_peer import OrionAdapter

        return OrionAdapter()
    if name == "openfhe":
        from .openfhe_peer import OpenfheAdapter

        return OpenfheAdapter()
    raise ValueError(f"unknown peer '{name}'; known peers: {', '.join(known_peers())}")


#: Where each peer comes from, for the messages of missing peers (the ``bench`` extra has all but Orion).
INSTALL_HINTS: Dict[str, str] = {
    "openfhe": "pip install 'hetensor[bench]' or pip install openfhe (wheels import on Python 3.10 and 3.12 only)",
    "tenseal": "pip install 'hetensor[bench]' or pip install tenseal",
    "desilofhe": "pip install 'hetensor[bench]' or pip install desilofhe",
    "orion": "pip install torch==2.13.0 && pip install --no-deps orion-fhe && pip install PyYAML h5py scipy",
}
