"""Fixed reference figures of the peers, as recorded in issue 3 (2-core machine, N = 2^16).

They are quoted beside each run, never compared automatically: the suite
measures every installed peer in the same run as hetensor.
"""

from __future__ import annotations

from typing import Any, Dict, List

#: Milliseconds, single thread unless the key says otherwise.
REFERENCE: List[Dict[str, Any]] = [
    {"library": "OpenFHE 1.5.1 (Python, built from source)", "params": "N=2^16, 24 levels, 40-bit scale, dnum 2",
     "threads": 1, "ms": {"mul_relin": 344, "rotate": 320, "rescale": 70, "mul_plain": 24, "add": 17,
                          "encrypt": 183, "keygen_relin": 356},
     "notes": "encrypt = encode+encrypt; mul_plain presumably without encode or rescale"},
    {"library": "OpenFHE 1.5.1 (Python, built from source)", "params": "N=2^16, 24 levels, 40-bit scale, dnum 2",
     "threads": 2, "ms": {"mul_relin": 199, "rotate": 199, "rescale": 38}, "notes": ""},
    {"library": "desilofhe 2.0.0 (CPU)", "params": "N=2^16, 24 levels", "threads": 1,
     "ms": {"mul_relin_rescale": 399, "rotate": 313, "add": 3},
     "notes": "issue lists 399 ms as multiply+relinearize; desilofhe's multiply always rescales"},
    {"library": "Orion 1.0.2 (Lattigo)", "params": "N=2^16", "threads": 1,
     "ms": {"mul_relin": 403, "rotate": 304, "rescale": 96}, "notes": ""},
    {"library": "TenSEAL 0.3.18", "params": "N=2^15 (no 128-bit context at 2^16)", "threads": 1,
     "ms": {"mul_relin": 150, "rotate": 138}, "notes": ""},
]

#: Bits of precision after one multiply + rescale at N = 2^16.
REFERENCE_PRECISION_BITS: Dict[str, float] = {"OpenFHE": 18.7, "desilofhe": 23.6, "Orion": 23.6}


def reference_record() -> Dict[str, Any]:
    """The JSON form of the reference figures."""
    return {"source": "issue 3", "unit": "ms", "figures": REFERENCE, "precision_bits": REFERENCE_PRECISION_BITS}
