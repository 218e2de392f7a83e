"""Command line: ``python -m hetensor.bench [options]``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from .ops import GROUPS, OP_NAMES, resolve_ops
from .peers import known_peers
from .runner import RunConfig, run_suite

EPILOG = f"""\
ops: {', '.join(OP_NAMES)}
groups: {', '.join(f'{g} ({",".join(v)})' for g, v in GROUPS.items())}, all
peers: {', '.join(known_peers())}, all, none

example:
  python -m hetensor.bench --preset n14 --threads 1,2 --peers all --json out.json --plot out.png
"""


def _split(values: Optional[Sequence[str]], default: List[str]) -> List[str]:
    if not values:
        return list(default)
    out: List[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (lists may be comma-separated or repeated)."""
    p = argparse.ArgumentParser(
        prog="python -m hetensor.bench",
        description="Benchmark hetensor's CKKS operations, side by side with other CKKS libraries.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", action="append", metavar="DEV", help="cpu (default) or cuda:N; repeatable")
    p.add_argument("--preset", action="append", metavar="NAMES", help="presets, e.g. n14,n15,n16 (default n14)")
    p.add_argument("--threads", action="append", metavar="COUNTS", help="thread counts, e.g. 1,2 (default 1)")
    p.add_argument("--ops", action="append", metavar="OPS", help="ops or groups (default all)")
    p.add_argument("--peers", action="append", metavar="NAMES",
                   help="peer libraries: openfhe,tenseal,desilofhe,orion, all or none (default none)")
    p.add_argument("--no-hetensor", action="store_true",
                   help="run the peers only (for runs where hetensor and a peer do not fit in memory together)")
    p.add_argument("--repeat", type=int, default=5, metavar="K", help="timed samples per op (default 5)")
    p.add_argument("--warmup", type=int, default=1, metavar="W", help="untimed calls before them (default 1)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG plot (needs matplotlib)")
    p.add_argument("--markdown", metavar="PATH", help="write the report as markdown tables")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no report table on stdout")
    return p


def parse_config(argv: Optional[Sequence[str]] = None) -> tuple:
    """Parse and validate; errors exit with status 2 and a message naming the valid values."""
    parser = build_parser()
    args = parser.parse_args(argv)
    import hetensor as ht

    presets = _split(args.preset, ["n14"])
    bad = [x for x in presets if x not in ht.presets()]
    if bad:
        parser.error(f"unknown preset(s) {', '.join(bad)}; choose from {', '.join(ht.presets())}")
    try:
        threads = [int(t) for t in _split(args.threads, ["1"])]
    except ValueError:
        parser.error("--threads takes positive integers, e.g. 1,2")
    if any(t < 1 for t in threads):
        parser.error("--threads takes positive integers, e.g. 1,2")
    try:
        ops = resolve_ops(_split(args.ops, ["all"]))
    except ValueError as exc:
        parser.error(str(exc))
    peers = _split(args.peers, ["none"])
    if "all" in peers:
        peers = known_peers()
    peers = [x for x in dict.fromkeys(peers) if x != "none"]
    bad = [x for x in peers if x not in known_peers()]
    if bad:
        parser.error(f"unknown peer(s) {', '.join(bad)}; known: {', '.join(known_peers())}, all, none")
    devices = _split(args.device, ["cpu"])
    for d in devices:
        if d != "cpu" and not (d.startswith("cuda") and (d == "cuda" or d[4:5] == ":" and d[5:].isdigit())):
            parser.error(f"unknown device '{d}'; use cpu or cuda:N")
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install matplotlib (or pip install 'hetensor[bench]')")
    cfg = RunConfig(devices=devices, presets=presets, threads=threads, ops=ops, peers=peers,
                    repeat=args.repeat, warmup=args.warmup, show_progress=not args.no_progress,
                    hetensor=not args.no_hetensor,
                    command=["python", "-m", "hetensor.bench"] + list(sys.argv[1:] if argv is None else argv))
    return cfg, args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the suite; exit status 0, 1 when a hetensor op failed (peers' failures are reported only),
    2 when no requested device can run (``--device cuda`` without a GPU)."""
    cfg, args = parse_config(argv)
    doc = run_suite(cfg)
    skipped = {rec["device"] for rec in doc["skipped"] if rec["reason"] != "peers run on the CPU only"}
    if skipped and skipped >= set(cfg.devices):
        print(f"error: no requested device can run ({', '.join(sorted(skipped))}); see the reasons above",
              file=sys.stderr)
        if args.json:
            from .jsonout import write_json

            write_json(doc, args.json)
        return 2
    if not args.quiet:
        from .report import render

        print(render(doc))
    if args.json:
        from .jsonout import write_json

        write_json(doc, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.markdown:
        from .report import render_markdown

        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(render_markdown(doc))
        print(f"wrote {args.markdown}", file=sys.stderr)
    if args.plot:
        if doc["runs"]:
            from .plot import write_plot

            write_plot(doc, args.plot)
            print(f"wrote {args.plot}", file=sys.stderr)
        else:
            print("no plot: no run completed", file=sys.stderr)
    failed = [
        f"{run['preset']}/t{run['threads']}/{op}"
        for run in doc["runs"] for op, rec in run["results"].get("hetensor", {}).items()
        if rec.get("status") == "error"
    ]
    if failed:
        print(f"hetensor ops failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
