"""Timing a planned encrypted computation one distinct operation at a time (benches of issues 11, 12).

A plan (hetensor.nn.plan: forward, or a training step's forward, backward and
optimizer) lists every operation with its ghost operands (shape, layout,
level, ciphertext count). Operations with one :func:`signature` cost the same,
so each distinct one is run once, encrypted, at its real shape and level on a
real context (:func:`time_op`: wall and process CPU seconds, and its bits
against the float64 result), and a plan's time is the sum over its operations.
Used by bench/nn_minilm.py and bench/train_step.py, which write their JSON
(:func:`write_json`, atomically) after every timed operation, so a run that is
stopped or killed resumes from it (:meth:`Timings.reuse` with ``resume``: the
operations timed there are not timed again). As a script it lists the timed
operations of their JSON, costliest first:

    python bench/op_timing.py bench/results-nn-minilm-n16-boot.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import numpy as np

#: the order in which distinct operations are timed: the costly kinds first, so a budget cuts the cheap ones
ORDER = {"bootstrap": 0, "ccmm": 1, "cpmm": 2, "pcmm": 2, "poly": 3, "mul": 4}


def classify(op: Dict[str, Any]) -> str:
    """The breakdown's class of a planned operation (bootstraps and products by kind, the rest by module)."""
    k, m = op["kind"], op["module"]
    if k == "bootstrap":
        return "bootstraps"
    if k in ("cpmm", "pcmm"):
        return "CPMM"
    if k == "ccmm":
        return "CCMM"
    if m == "loss":
        return "loss"
    if m.startswith("AdamW"):
        return "AdamW (element-wise, inverse sqrt)"
    if ".ln" in f".{m}" or m.startswith("ln") or m == "norm":
        return "LayerNorm"
    if "attn" in m:
        return "attention (element-wise, exp)"
    if "act" in m:
        return "activation (GELU)"
    return "element-wise (other)"


def _layout_key(x: Any) -> Any:
    lay = getattr(x, "_layout", None)
    if lay is None:
        return ("plain", tuple(getattr(x, "shape", ())))
    return (tuple(lay.shape), bool(lay.transposed), int(lay.num_ciphertexts), repr(lay)[:120])


def signature(op: Dict[str, Any]) -> Tuple:
    """Operations with one signature cost the same: kind, operand layouts, level, ciphertexts."""
    k = op["kind"]
    if k == "bootstrap":  # a bootstrap starts from the bottom level whatever the input's
        return (k, 0, op["cts"], op.get("paired", 0), ())
    args = tuple(_layout_key(a) if k != "poly" or i == 0 else (a.degree, a.depth) for i, a in enumerate(op["args"]))
    return (k, op["level"], op["cts"], op.get("paired", 0), args)


def real_of(ctx: Any, g: Any, rng: np.random.Generator, lo: float = -1.0, hi: float = 1.0) -> Any:
    """A CipherTensor with the ghost's shape, layout and level (random values), and those values."""
    x = rng.uniform(lo, hi, tuple(g.shape))
    t = ctx.encrypt(x, layout=g._layout) if g._layout is not None else ctx.encrypt(x)
    return (t.level_to(g.level) if t.level > g.level else t), x


_LAST_CPU = [0.0]  # CPU seconds of the last timed operation (process time: robust to a loaded machine)


def _start() -> Tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _stop(t0: Tuple[float, float]) -> float:
    """Wall seconds since ``t0``; the CPU seconds go to ``_LAST_CPU``."""
    _LAST_CPU[0] = time.process_time() - t0[1]
    return time.perf_counter() - t0[0]


def bits(got: np.ndarray, ref: np.ndarray) -> float:
    """Bits of agreement of ``got`` with the float64 ``ref`` (relative to ref's largest magnitude)."""
    err = float(np.max(np.abs(np.asarray(got) - ref)))
    return math.inf if err == 0 else -math.log2(err / max(float(np.max(np.abs(ref))), 1e-300))


def _plain_of(pm: Any) -> np.ndarray:
    """The float64 values of a plaintext product operand (a planned PlainMatrix or an array)."""
    return np.real(np.asarray(getattr(pm, "array", pm)))


def time_op(ctx: Any, op: Dict[str, Any], rng: np.random.Generator) -> Tuple[float, float]:
    """Run one planned operation encrypted at its shape; (wall seconds, bits against float64).
    Its CPU seconds are left in ``_LAST_CPU[0]``. A bootstrap's seconds are per circuit."""
    k, args = op["kind"], op["args"]
    if k in ("cpmm", "pcmm"):
        xg, pm = (args[0], args[1]) if k == "cpmm" else (args[1], args[0])
        t, x = real_of(ctx, xg, rng)
        w = _plain_of(pm)  # the layer's own weight (its zero columns shape the product)
        t0 = _start()
        y = t @ pm if k == "cpmm" else pm @ t
        sec = _stop(t0)
        return sec, bits(ctx.decrypt(y), x @ w if k == "cpmm" else w @ x)
    if k == "ccmm":
        (a, xa), (b, xb) = real_of(ctx, args[0], rng), real_of(ctx, args[1], rng)
        t0 = _start()
        y = a @ b
        sec = _stop(t0)
        return sec, bits(ctx.decrypt(y), xa @ xb)
    if k in ("mul", "add"):
        (a, xa), (b, xb) = real_of(ctx, args[0], rng), real_of(ctx, args[1], rng)
        t0 = _start()
        y = a * b if k == "mul" else a + b
        sec = _stop(t0)
        return sec, bits(ctx.decrypt(y), xa * xb if k == "mul" else xa + xb)
    if k in ("mul_plain", "add_plain"):
        a, xa = real_of(ctx, args[0], rng)
        v = rng.uniform(0.5, 1.5, tuple(args[0].shape)[-1:])
        t0 = _start()
        y = a * v if k == "mul_plain" else a + v
        sec = _stop(t0)
        return sec, bits(ctx.decrypt(y), xa * v if k == "mul_plain" else xa + v)
    if k == "poly":
        poly = args[1]
        a, xa = real_of(ctx, args[0], rng, poly.a, poly.b)
        t0 = _start()
        y = a.assume_range(poly.a, poly.b).polyval(poly, assume_in_interval=True)
        sec = _stop(t0)
        return sec, bits(ctx.decrypt(y), poly(xa))
    if k == "bootstrap":
        a, xa = real_of(ctx, args[0], rng, -0.9, 0.9)
        a = a.assume_bound(1.0)
        if op.get("paired", 0) >= 2:
            b, xb = real_of(ctx, args[0], rng, -0.9, 0.9)
            t0 = _start()
            ya, yb = ctx.bootstrap_many([a, b.assume_bound(1.0)])
            sec = _stop(t0)
            per = int(args[0]._ct.batch)  # the record's cts counts circuits for the pair of tensors
            _LAST_CPU[0] /= max(1, per)
            return sec / max(1, per), min(bits(ctx.decrypt(ya), xa), bits(ctx.decrypt(yb), xb))
        t0 = _start()
        y = ctx.bootstrap_many([a])[0]  # a tensor's ciphertexts pair up, as in the forward
        sec = _stop(t0)
        _LAST_CPU[0] /= max(1, int(op["cts"]))
        return sec / max(1, int(op["cts"])), bits(ctx.decrypt(y), xa)  # per circuit
    if k == "roll":
        from hetensor.linalg import roll_rows

        a, xa = real_of(ctx, args[0], rng)
        shift, block = int(args[1]), int(args[2])
        t0 = _start()
        y = roll_rows(a, shift, block)
        sec = _stop(t0)
        ref = np.roll(xa.reshape(-1, block, xa.shape[-1]), -shift, axis=1).reshape(xa.shape)
        return sec, bits(ctx.decrypt(y), ref)
    if k in ("relayout", "broadcast"):  # an element-wise operation's alignment of an operand
        from hetensor.linalg.moves import broadcast_to, relayout

        a, xa = real_of(ctx, args[0], rng)
        t0 = _start()
        y = relayout(a, args[1]._layout) if k == "relayout" else broadcast_to(a, args[1]._layout)
        sec = _stop(t0)
        return sec, bits(ctx.decrypt(y), np.broadcast_to(xa, tuple(args[1].shape)))
    raise ValueError(f"unknown op kind {k}")


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` to ``path`` atomically (a temporary file in the same folder, then a rename),
    so a kill during the write leaves the previous file whole."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def distinct(ops: Iterable[Dict[str, Any]]) -> List[Tuple[Tuple, Dict[str, Any]]]:
    """(signature, first operation) of each distinct operation, the costly kinds first."""
    sigs: Dict[Tuple, Dict[str, Any]] = {}
    for o in ops:
        sigs.setdefault(signature(o), o)
    return sorted(sigs.items(), key=lambda kv: ORDER.get(kv[0][0], 5))


class Timings:
    """Per-signature (wall seconds, bits) and CPU seconds, and which came from an earlier run's JSON."""

    def __init__(self) -> None:
        self.times: Dict[Tuple, Tuple[float, float]] = {}
        self.cpu: Dict[Tuple, float] = {}
        self.reused: Set[Tuple] = set()
        self.source: Dict[Tuple, str] = {}  # where a reused timing was measured
        self.resumed: Set[Tuple] = set()  # timed by the interrupted run this one continues

    def reuse(self, path: str, todo: List[Tuple[Tuple, Dict[str, Any]]], resume: bool = False) -> int:
        """Take the operations of ``todo`` timed in ``path`` (a JSON of nn_minilm.py or train_step.py at the
        same preset): by signature, bootstraps by ciphertext count. Returns how many. ``resume``: ``path`` is
        an earlier, interrupted run of this same bench, whose own timings stay this run's (not marked reused)."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"no timings to reuse at {path}: give the JSON of an earlier run")
        with open(path) as f:
            old = json.load(f).get("ops", [])
        by_sig = {o["sig"]: o for o in old if "sig" in o}
        boots = {int(o["cts"]): o for o in old if o["kind"] == "bootstrap"}
        n = 0
        for sig, _ in todo:
            o = by_sig.get(repr(sig))
            if o is None and sig[0] == "bootstrap" and not resume:  # another bench's bootstrap of as many
                o = boots.get(int(sig[2]))
            if o is not None and sig not in self.times:
                self.times[sig] = (float(o["seconds"]), float(o["bits"]))
                if o.get("cpu_seconds") is not None:
                    self.cpu[sig] = float(o["cpu_seconds"])
                if not resume or o.get("reused"):
                    self.reused.add(sig)
                    self.source[sig] = (o.get("source") or path) if resume else path
                else:
                    self.resumed.add(sig)
                n += 1
        return n

    def ops_json(self) -> List[Dict[str, Any]]:
        """The JSON rows that :meth:`reuse` reads back."""
        return [dict(kind=s[0], level=s[1], cts=s[2], seconds=v[0], cpu_seconds=self.cpu.get(s), bits=v[1],
                     sig=repr(s), reused=s in self.reused, source=self.source.get(s))
                for s, v in self.times.items()]

    def drop_boot_transforms(self, ctx: Any, todo: List[Tuple[Tuple, Dict[str, Any]]]) -> bool:
        """When no bootstrap of ``todo`` is left to time, free the bootstrapping transforms (GBs at
        n16-boot) so that the large encrypted products fit beside the keys on a 24 GiB machine."""
        boot = getattr(ctx, "_bootstrapper", None)
        if boot is None or not all(sig in self.times for sig, _ in todo if sig[0] == "bootstrap"):
            return False
        boot.release_transforms()
        return True

    def run(self, ctx: Any, todo: List[Tuple[Tuple, Dict[str, Any]]], budget: float,
            count: Callable[[Tuple], int], dump: Optional[Callable[[], None]] = None,
            rng: Optional[np.random.Generator] = None, errors: Optional[Dict[Tuple, str]] = None) -> float:
        """Time each operation of ``todo`` not timed yet until ``budget`` seconds are spent (``count``:
        how often the plans use a signature, for the log); ``dump`` after each (a kill keeps the work).
        With ``errors``, an operation that fails is recorded there (signature: message) instead of raising."""
        rng = np.random.default_rng(0) if rng is None else rng
        spent = 0.0
        for sig, op in todo:
            if sig in self.times:
                continue
            if spent > budget:
                break
            try:
                sec, b = time_op(ctx, op, rng)
            except Exception as err:  # noqa: BLE001 - listed as not timed, with why
                if errors is None:
                    raise
                errors[sig] = f"{type(err).__name__}: {err}"
                print(f"  {sig[0]:<9} level {sig[1]:>2} cts {sig[2]:>2}  NOT TIMED: {errors[sig]} ({op['module']})",
                      flush=True)
                continue
            spent += sec
            self.times[sig] = (sec, b)
            self.cpu[sig] = _LAST_CPU[0]
            if dump is not None:
                dump()
            print(f"  {sig[0]:<9} level {sig[1]:>2} cts {sig[2]:>2}  {sec:8.2f} s ({self.cpu[sig]:8.2f} s CPU)  "
                  f"{b:5.1f} bits  x{count(sig):<3} ({op['module']})", flush=True)
        return spent


def main(argv: Any = None) -> List[Dict[str, Any]]:
    """Print the timed operations of a JSON of bench/nn_minilm.py or bench/train_step.py, costliest first."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("json")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    with open(args.json) as f:
        ops = sorted(json.load(f).get("ops", []), key=lambda o: -float(o["seconds"]))
    for o in ops[: args.top]:
        cpu = o.get("cpu_seconds")
        print(f"{o['kind']:<9} level {o['level']:>2} cts {o['cts']:>2}  {o['seconds']:9.2f} s  "
              f"{'' if cpu is None else f'{cpu:9.2f} s CPU'}  {o['bits']:5.1f} bits{'  (reused)' if o.get('reused') else ''}")
    return ops


if __name__ == "__main__":
    main()
