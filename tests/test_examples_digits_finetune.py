"""The LoRA fine-tuning example in plain mode (short): hetensor's plain-mode
fine-tuning (the polynomial model, its backward and AdamW) follows PyTorch's."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_digits_finetune_plain_follows_pytorch(capsys, tmp_path):
    from hetensor.examples import digits_finetune

    out = digits_finetune.main(["--epochs", "2", "--lora-epochs", "2", "--limit", "256", "--batch", "64",
                                "--simulate", "0", "--encrypted-steps", "0", "--max-depth", "8",
                                "--out", str(tmp_path)])
    acc = dict(out["rows"])
    before_t = acc["before fine-tuning, PyTorch"]
    before_p = next(v for k, v in acc.items() if k.startswith("before fine-tuning, plain"))
    after_t = next(v for k, v in acc.items() if k.startswith("LoRA fine-tuned, PyTorch"))
    after_p = next(v for k, v in acc.items() if k.startswith("LoRA fine-tuned, hetensor plain"))
    assert abs(before_p - before_t) <= 2 / 450  # the polynomials keep the exact model's predictions
    assert abs(after_p - after_t) <= 0.05  # same data, batch size and epochs (other shuffles); AdamW eps inside the root
    assert len(out["histories"]["plain"]) == 8  # 2 epochs of 4 batches
    assert (tmp_path / "digits_finetune.png").stat().st_size > 1000
    assert "LoRA rank 4" in capsys.readouterr().out


@pytest.mark.slow
def test_digits_finetune_encrypted_step_reaches_plain_accuracy(tmp_path):
    """One encrypted step at n12-boot9-insecure (8 levels per polynomial, as n16-boot): the adapters move as
    plain mode's on the same batch (>= 8 bits of the update: AdamW's first update is g / sqrt(g^2 + eps), which
    magnifies the error of the model's smallest gradients; measured 9.7 bits), and the decrypted model's test
    accuracy is plain mode's after the same step to within one image."""
    from hetensor.examples import digits_finetune

    out = digits_finetune.main(["--epochs", "2", "--lora-epochs", "1", "--limit", "64", "--batch", "32",
                                "--simulate", "0", "--encrypted-steps", "1", "--threads", "1"])
    assert out["encrypted_update_bits"] >= 8.0
    assert abs(out["encrypted_accuracy"] - out["plain_same_batches_accuracy"]) <= 1 / 450 + 1e-12
    rows = dict(out["rows"])
    assert next(v for k, v in rows.items() if k.startswith("after 1 encrypted step(s)")) == out["encrypted_accuracy"]
