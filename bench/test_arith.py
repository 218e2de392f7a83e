"""Encoding, encryption and ciphertext arithmetic."""

import pytest

from harness import LIBS, run_op

OPS = ["encode", "encrypt", "decrypt", "add", "mul_plain", "mul_relin", "rescale", "mul_relin_rescale"]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("op", OPS)
def test_arith(benchmark, lib, op):
    run_op(benchmark, lib, op)
