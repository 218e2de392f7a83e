"""JSON output with a stable schema (``schema: hetensor.bench/1``).

Top level: schema, created, command, machine, settings, libraries, runs,
skipped, reference. Each run: device, preset, threads, params{lib}, results{lib:
{op: record}}, metrics{lib: {name: {value, unit}}}, ratios{peer: {op: float}}.
An op record has status ``ok`` (unit "s", median, min, max, mean, repeat,
warmup, samples, peak_rss_bytes, peak_delta_bytes, memory_method, note?),
``unavailable`` or ``error`` (with reason).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict

SCHEMA_KEYS = ("schema", "created", "command", "machine", "settings", "libraries", "runs", "skipped", "reference")
RUN_KEYS = ("device", "preset", "threads", "params", "results", "metrics", "ratios")
OK_OP_KEYS = ("status", "unit", "median", "min", "max", "mean", "repeat", "warmup", "samples",
              "peak_rss_bytes", "peak_delta_bytes")


def _clean(obj: Any) -> Any:
    """Replace NaN / infinity (not valid JSON) by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(doc: Dict[str, Any], path: str) -> None:
    """Write the run document to ``path`` (directories are created)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_clean(doc), fh, indent=1, allow_nan=False)
        fh.write("\n")
