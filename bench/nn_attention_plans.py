"""Plans (no data, no keys) of the digits classifier's forward with dense against
per-sequence attention: bootstraps, attention's operations, rotation keys, for a few
batch sizes at toy-boot-insecure (issue 11, bench/RESULTS.md).

    python bench/nn_attention_plans.py
"""

import collections
import time

import hetensor as ht
import hetensor.nn as hnn
from hetensor.examples import digits
from hetensor.nn.plan import plan_forward


def main() -> None:
    x_tr, y_tr, _, _ = digits.load_digits_tokens(0)
    tm = digits.train(x_tr, y_tr, epochs=2, lora_epochs=1)
    ctx = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=3)
    model = hnn.from_torch(tm, calibration=x_tr, max_depth=ctx.usable_levels - 1)
    att = [m for _, m in model.named_modules() if type(m).__name__ == "GaussianKernelAttention"][0]
    for B in (4, 16, 32):
        for per in (True, False):
            att.per_sequence = per
            t0 = time.perf_counter()
            p = plan_forward(model, ctx, (B, 8, 8))  # just-in-time placement
            att_ops = collections.Counter(o["kind"] for o in p.ops if "attn" in o["module"])
            att_boot = sum(1 for b in p.bootstraps if "attn" in b["module"])
            print(f"B={B:3d} per_sequence={per!s:5}: {p.circuits} circuits ({len(p.bootstraps)} tensors, attention {att_boot}), "
                  f"attention ops {dict(att_ops)}, keys {len(p.keys)}, plan {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
