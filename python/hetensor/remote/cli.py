"""``hetensor serve MODEL``: run a model file's linear layers for encrypted clients (uvicorn).

SIGINT / SIGTERM stop it gracefully: no new connections, requests in flight
finish (up to ``--graceful-timeout`` seconds), sessions are dropped, exit 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import List, Optional

from .limits import Limits, parse_size


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetensor", description="hetensor command line")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the linear layers of a model file to encrypted clients",
                       description="Serve the linear layers (NAME.weight, NAME.bias) of a .safetensors or .npz "
                                   "file: clients send encrypted activations, get encrypted products back.")
    d = Limits()
    s.add_argument("model", help="model file (.safetensors or .npz) of NAME.weight (out x in) / NAME.bias arrays")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument("--layers", default=None, help="comma-separated layer names to serve (default: every layer)")
    s.add_argument("--max-key-bytes", default=str(d.max_key_bytes), help="largest key upload, e.g. 4G")
    s.add_argument("--max-total-key-bytes", default=str(d.max_total_key_bytes), help="keys kept for all sessions")
    s.add_argument("--max-body-bytes", default=str(d.max_body_bytes), help="largest ciphertext request, e.g. 256M")
    s.add_argument("--max-sessions", type=int, default=d.max_sessions, help="sessions kept at once (LRU evicted)")
    s.add_argument("--session-ttl", type=float, default=d.session_ttl, help="seconds an idle session lives")
    s.add_argument("--max-concurrent", type=int, default=d.max_concurrent, help="products computed at once")
    s.add_argument("--queue-timeout", type=float, default=d.queue_timeout, help="seconds a request waits for a slot")
    s.add_argument("--body-timeout", type=float, default=d.body_timeout, help="seconds between body chunks")
    s.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds in-flight requests get at shutdown")
    s.add_argument("--threads", type=int, default=None, help="CPU threads of the core (default: all)")
    s.add_argument("--allow-insecure", action="store_true", help="accept toy (insecure) parameters: tests only")
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``hetensor`` console script."""
    args = _parser().parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        print("hetensor serve needs the server packages: pip install 'hetensor[remote]'", file=sys.stderr)
        return 2
    import hetensor

    from . import logs
    from .app import create_app
    from .weights import load_layers

    try:
        limits = Limits(max_key_bytes=parse_size(args.max_key_bytes),
                        max_total_key_bytes=parse_size(args.max_total_key_bytes),
                        max_body_bytes=parse_size(args.max_body_bytes), max_sessions=args.max_sessions,
                        session_ttl=args.session_ttl, max_concurrent=args.max_concurrent,
                        queue_timeout=args.queue_timeout, body_timeout=args.body_timeout,
                        allow_insecure=args.allow_insecure)
        names = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
        layers = load_layers(args.model, names)
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"hetensor serve: {e}", file=sys.stderr)
        return 2
    if args.threads is not None:
        hetensor.set_num_threads(args.threads)
    logs.setup(level=getattr(logging, args.log_level.upper()))
    app = create_app(layers, limits)
    # uvicorn shuts down gracefully on these signals, then re-raises them with the handlers it found:
    # these make that last step a clean exit 0 (instead of death by the signal).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_cleanly)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=args.graceful_timeout, timeout_keep_alive=5)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
