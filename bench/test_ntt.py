"""NTT: one limb and all limbs, forward + inverse."""

import pytest

from harness import LIBS, run_op


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("op", ["ntt_limb", "ntt_all"])
def test_ntt(benchmark, lib, op):
    run_op(benchmark, lib, op)
