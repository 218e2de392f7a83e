"""Sizes of serialized objects (compressed vs not), save and load times.

    python bench/serialize_sizes.py --preset n14 [--json out.json]
    flock /tmp/hetensor-heavy.lock python bench/serialize_sizes.py --preset n16-boot --dir /tmp/ht-boot

Sizes follow exactly from the format (docs/SECURITY.md): `expected_sizes`
computes them from the parameters and the script checks the formula against
the bytes actually written. With --dir, the public context is saved to files
(compressed and not) and each is loaded in a fresh child process, which
reports the load time and peak RSS: a loaded n16-boot context and the one
that made it do not fit in memory together on a small machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

import hetensor as ht
from hetensor import _core

WORD = 8
SEED = 32


def expected_sizes(ctx: ht.Context, compressed: bool, galois: int) -> dict:
    """Bytes of each part of a public context and of ciphertexts, from the format.

    A switching key made for level l has l // digit_size + 1 digits over the l + 1 + alpha
    primes; a compact key (``ctx.compact_keys``) stores its a halves as seeds in both forms."""
    eng = ctx._engine
    n, L = ctx.ring_degree, ctx.max_level
    alpha = len(eng.p)
    lit = _core.preset_literal(ctx.name) if ctx.name in ht.presets() else None
    name_len = len(ctx.name.encode())
    level_bits = len(lit.level_bits) if lit is not None else 0
    words = (L + 1 + alpha) * n
    digit_size = -(-(L + 1) // eng.dnum)
    a_part = SEED if compressed else words * WORD

    def switch_key(level: int, compact: bool) -> int:
        key_words = (level + 1 + alpha) * n
        seeded = compressed or compact
        return 4 + 1 + 4 + (level // digit_size + 1) * (key_words * WORD + (SEED if seeded else key_words * WORD))

    params = 4 + name_len + 32 + 4 + 4 * level_bits + 8 + 1 + 4 + 8 * (L + 1) + 4 + 8 * alpha
    relin = switch_key(L, bool(eng.relin_key_compact))
    levels = eng.galois_key_levels()
    assert len(levels) == galois, f"{len(levels)} Galois keys, {galois} expected"
    galois_bytes = sum(8 + switch_key(lv, ctx.compact_keys) for lv in levels.values())
    enc = 0
    if ctx._bootstrapper is not None and ctx._bootstrapper.params.encapsulation_h:
        enc = 4 + 1 + 2 * n * WORD + (SEED if compressed else 2 * n * WORD) + switch_key(L, ctx.compact_keys)
    return {
        "public_key": 1 + words * WORD + a_part,
        "relinearization_key": relin,
        "rotation_key": 8 + switch_key(L, ctx.compact_keys),  # one made for every level
        "galois_keys": galois,
        "galois_key_bytes": galois_bytes,
        "encapsulation_keys": enc,
        "params": params,
        "secret_key": words * WORD,
        "context_without_attrs": 48 + params + 1 + (1 + words * WORD + a_part) + relin + 4 + galois_bytes + 1 + enc,
        "ciphertext_top_level": 2 * (L + 1) * n * WORD,
        "ciphertext_top_level_seeded": (L + 1) * n * WORD + SEED,
        "ciphertext_level_0": 2 * n * WORD,
    }


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(preset: str, outdir: str | None) -> dict:
    boot = "boot" in preset
    t = time.perf_counter()
    ctx = ht.Context.from_preset(preset, rotations=[] if boot else [1, 2, 4], conjugation=not boot, bootstrap=boot)
    keygen = time.perf_counter() - t
    pub = ctx.public()
    out = {"preset": preset, "keygen_s": round(keygen, 1), "key_bytes_in_memory": ctx.key_bytes(),
           "galois_keys": len(ctx.rotation_steps) + 1}
    for compressed in (True, False):
        exp = expected_sizes(ctx, compressed, len(ctx.rotation_steps) + 1)  # + the conjugation key
        tag = "compressed" if compressed else "full"
        out[f"expected_{tag}"] = exp
        if outdir:
            path = os.path.join(outdir, f"{preset}-public-{tag}.ht")
            t = time.perf_counter()
            pub.save(path, compress=compressed)
            out[f"save_{tag}_s"] = round(time.perf_counter() - t, 2)
            size = os.path.getsize(path)
        else:
            t = time.perf_counter()
            size = len(pub.to_bytes(compress=compressed))
            out[f"save_{tag}_s"] = round(time.perf_counter() - t, 2)
        out[f"context_{tag}_bytes"] = size
        attrs = size - exp["context_without_attrs"]
        assert 0 < attrs < 200, f"the size formula is off by {attrs} bytes"
    x = np.linspace(-1, 1, ctx.slots)
    out["ciphertext_public_bytes"] = len(ctx.encrypt(x).to_bytes())
    out["ciphertext_symmetric_seeded_bytes"] = len(ctx.encrypt(x, symmetric=True).to_bytes())
    out["ciphertext_level0_bytes"] = len(ctx.encrypt(x).level_to(0).to_bytes())
    out["peak_rss_gb"] = round(rss_gb(), 2)
    return out


LOAD_CHILD = """
import json, resource, sys, time
import hetensor as ht
from hetensor import _core
path, unsafe = sys.argv[1], sys.argv[2] == "1"
t = time.perf_counter()
with open(path, "rb") as f:
    import mmap
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
eng, attrs = _core.deserialize_context(mm, True, unsafe)  # a file this script wrote
core = time.perf_counter() - t
del eng
mm.close()
t = time.perf_counter()
ctx = ht.load(path, unsafe=unsafe, allow_insecure=True)
full = time.perf_counter() - t
print(json.dumps({"core_load_s": round(core, 2), "load_with_bootstrapper_s": round(full, 2),
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))
"""


def load_in_child(path: str, unsafe: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD_CHILD, path, "1" if unsafe else "0"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="n14")
    ap.add_argument("--dir", default=None, help="save the public context here and time loading it in a child")
    ap.add_argument("--json", default=None)
    ap.add_argument("--phase", default="all", choices=["all", "save"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    if args.dir and args.phase == "all":
        # key generation and saving in a child, so that its memory is gone before the loads
        part = os.path.join(args.dir, "save.json")
        subprocess.run([sys.executable, __file__, "--preset", args.preset, "--dir", args.dir, "--phase", "save",
                        "--json", part], check=True)
        with open(part) as f:
            res = json.load(f)
    else:
        res = measure(args.preset, args.dir)
        print(json.dumps(res, indent=1), flush=True)
    if args.dir and args.phase == "all":
        for tag in ("compressed", "full"):
            path = os.path.join(args.dir, f"{args.preset}-public-{tag}.ht")
            for unsafe in (False, True):
                res[f"load_{tag}{'_unsafe' if unsafe else ''}"] = load_in_child(path, unsafe)
                print(tag, "unsafe" if unsafe else "checked", res[f"load_{tag}{'_unsafe' if unsafe else ''}"],
                      flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
