"""Key generation: context (secret, public, relinearization), each key alone, one Galois key."""

import pytest

from harness import LIBS, run_op


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("op", ["keygen_context", "keygen_public", "keygen_relin", "keygen_galois"])
def test_keygen(benchmark, lib, op):
    run_op(benchmark, lib, op)
