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
