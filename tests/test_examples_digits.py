"""The digits example in plain mode (short training): its polynomials with the
n16-boot budget (8 levels each) keep the accuracy of the exact model."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_digits_plain_mode_keeps_the_exact_accuracy(capsys):
    from hetensor.examples import digits

    out = digits.main(["--epochs", "4", "--lora-epochs", "1", "--encrypted", "0", "--simulated", "0",
                       "--max-depth", "8"])
    (_, n, exact, *_), (_, n2, plain, *_) = out["rows"]
    assert n == n2 == 450
    assert exact > 0.6  # a few epochs already learn the digits
    assert abs(plain - exact) <= 2 / 450  # at most two of the 450 test images change class
    assert "torch exact" in capsys.readouterr().out
