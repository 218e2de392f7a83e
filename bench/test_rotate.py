"""Rotations: one, and K hoisted."""

import pytest

from harness import LIBS, run_op


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("op", ["rotate", "rotate_hoisted"])
def test_rotate(benchmark, lib, op):
    run_op(benchmark, lib, op)
