"""Runs the suite: every preset x thread count x op, hetensor and the peers interleaved."""

from __future__ import annotations

import datetime as _dt
import math
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .hetensor_ops import HetensorAdapter, device_support
from .machine import machine_info, peak_butterflies_per_s
from .ops import METRICS
from .peers import INSTALL_HINTS, make_adapter
from .peers.base import Adapter, Probe, Session
from .progress import progress
from .reference import reference_record
from .spec import preset_spec
from .timing import Unavailable, measure

SCHEMA = "hetensor.bench/1"


@dataclass
class RunConfig:
    """What to run (parsed from the command line)."""

    devices: List[str] = field(default_factory=lambda: ["cpu"])
    presets: List[str] = field(default_factory=lambda: ["n14"])
    threads: List[int] = field(default_factory=lambda: [1])
    ops: List[str] = field(default_factory=list)
    peers: List[str] = field(default_factory=list)
    repeat: int = 5
    warmup: int = 1
    show_progress: bool = True
    command: List[str] = field(default_factory=list)
    hetensor: bool = True  # False: the peers alone (e.g. when they and hetensor do not fit in memory together)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _error_record(exc: BaseException) -> Dict[str, Any]:
    return {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}


def _time_op(session: Session, op: str, cfg: RunConfig) -> Dict[str, Any]:
    try:
        bench = session.bench(op)
    except Exception as exc:
        return _error_record(exc)
    if isinstance(bench, Unavailable):
        return {"status": "unavailable", "reason": bench.reason}
    try:
        rec = measure(bench, cfg.repeat, cfg.warmup).as_dict()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return _error_record(exc)
    if bench.note:
        rec["note"] = bench.note
    return rec


def _metric_records(values: Dict[str, Optional[float]]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            value = None  # exact result: no finite number of bits
        out[name] = {"value": value, "unit": METRICS.get(name, "")}
    return out


def _ntt_metrics(results: Dict[str, Any], n: int, limbs: int, threads: int) -> Dict[str, Optional[float]]:
    """Butterflies per second from the NTT timings and their share of the estimated peak."""
    per_transform = n // 2 * int(math.log2(n))
    peak = peak_butterflies_per_s(threads)
    out: Dict[str, Optional[float]] = {}
    for op, count in (("ntt_limb", 2), ("ntt_all", 2 * limbs)):
        rec = results.get(op, {})
        if rec.get("status") != "ok":
            continue
        rate = count * per_transform / rec["median"]
        out[f"{op}_butterflies_per_s"] = rate
        out[f"{op}_peak_share"] = rate / peak if peak else None
    return out


def _ratios(results: Dict[str, Dict[str, Any]], base: str = "hetensor") -> Dict[str, Dict[str, float]]:
    """hetensor median / peer median per op (below 1: hetensor is faster)."""
    ours = results.get(base, {})
    out: Dict[str, Dict[str, float]] = {}
    for lib, recs in results.items():
        if lib == base:
            continue
        out[lib] = {}
        for op, rec in recs.items():
            mine = ours.get(op, {})
            if rec.get("status") == "ok" and mine.get("status") == "ok" and rec["median"] > 0:
                out[lib][op] = mine["median"] / rec["median"]
    return out


def _probe_libraries(cfg: RunConfig) -> Dict[str, Any]:
    adapters: Dict[str, Adapter] = {"hetensor": HetensorAdapter()} if cfg.hetensor else {}
    probes: Dict[str, Probe] = {"hetensor": adapters["hetensor"].probe()} if cfg.hetensor else {}
    for name in cfg.peers:
        adapter = make_adapter(name)
        probe = adapter.probe()
        if probe.status != "ok":
            # the install hint replaces probe_module's generic one (one hint per line)
            base = probe.reason.split(" (pip install")[0] if probe.status == "not_installed" else probe.reason
            probe.reason = f"{base} [install: {INSTALL_HINTS.get(name, name)}]"
            _log(f"peer {name}: {probe.status} - {probe.reason}")
        else:
            adapters[name] = adapter
        probes[name] = probe
    return {"adapters": adapters, "probes": probes}


def run_suite(cfg: RunConfig) -> Dict[str, Any]:
    """Run everything ``cfg`` asks for and return the JSON document (see ``jsonout.SCHEMA_KEYS``)."""
    libs = _probe_libraries(cfg)
    adapters: Dict[str, Adapter] = libs["adapters"]
    doc: Dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": cfg.command,
        "machine": machine_info(),
        "settings": {
            "devices": cfg.devices, "presets": cfg.presets, "threads": cfg.threads, "ops": cfg.ops,
            "peers": cfg.peers, "repeat": cfg.repeat, "warmup": cfg.warmup,
            "statistic": "median over repeat samples after warmup untimed calls; min and max of the samples",
        },
        "libraries": {name: p.as_dict() for name, p in libs["probes"].items()},
        "runs": [],
        "skipped": [],
        "reference": reference_record(),
    }
    devices = []
    for device in cfg.devices:
        reason = device_support(device)
        if reason:
            _log(reason)
            doc["skipped"].append({"device": device, "reason": reason})
        else:
            devices.append(device)
    total = len(devices) * len(cfg.presets) * len(cfg.threads) * len(cfg.ops) * len(adapters)
    bar = progress(total, cfg.show_progress)
    try:
        for device in devices:
            if device != "cpu":
                # GPU mode: per-kernel CUDA-event times (bench/gpu.py); peers run on the CPU only
                from .gpu import kernel_run

                doc["skipped"].append({"device": device, "reason": "peers run on the CPU only"})
                for preset in cfg.presets:
                    doc["runs"].append(kernel_run(device, preset, cfg.ops, cfg.repeat))
                continue
            for preset in cfg.presets:
                doc["runs"].extend(_run_preset(cfg, device, preset, adapters, bar))
    finally:
        bar.close()
    return doc


def _run_preset(cfg: RunConfig, device: str, preset: str, adapters: Dict[str, Adapter], bar) -> List[Dict[str, Any]]:
    spec = preset_spec(preset)
    libs = {name: a for name, a in adapters.items() if name == "hetensor" or device == "cpu"}
    if "hetensor" in libs:
        libs["hetensor"].device = device  # type: ignore[attr-defined]
    runs: List[Dict[str, Any]] = []
    first: Dict[str, Dict[str, Any]] = {}  # single-threaded libraries: results of the first thread count
    metrics_cache: Dict[str, Dict[str, Any]] = {}
    failed: Dict[str, str] = {}
    for threads in cfg.threads:
        run: Dict[str, Any] = {"device": device, "preset": preset, "threads": threads,
                               "params": {}, "results": {}, "metrics": {}, "ratios": {}}
        sessions: Dict[str, Session] = {}
        for name, adapter in libs.items():
            if name in failed:
                continue
            bar.set_description(f"{preset} t={threads} setting up {name}")
            try:
                sessions[name] = adapter.open(spec, threads)
                run["params"][name] = sessions[name].params.as_dict()
            except Exception as exc:
                failed[name] = f"setup failed: {type(exc).__name__}: {exc}"
                _log(f"{name} at {preset}: {failed[name]}")
                traceback.print_exc(file=sys.stderr)
        for name, reason in failed.items():
            run["params"][name] = {"error": reason}
            run["results"][name] = {op: {"status": "error", "reason": reason} for op in cfg.ops}
        for op in cfg.ops:
            for name, session in sessions.items():
                bar.set_description(f"{preset} t={threads} {op} [{name}]")
                reuse = not libs[name].thread_aware and name in first and op in first[name]
                if reuse:
                    rec = dict(first[name][op])
                    if rec.get("status") == "ok":
                        rec["reused_from_threads"] = cfg.threads[0]
                else:
                    rec = _time_op(session, op, cfg)
                    if not libs[name].thread_aware:
                        first.setdefault(name, {})[op] = rec
                run["results"].setdefault(name, {})[op] = rec
                bar.update(1)
        for name, session in sessions.items():
            if name not in metrics_cache:
                try:
                    metrics_cache[name] = session.metrics()
                except Exception as exc:
                    _log(f"{name} at {preset}: metrics failed: {type(exc).__name__}: {exc}")
                    metrics_cache[name] = {}
            values = dict(metrics_cache[name])
            limbs = getattr(session, "top_limbs", None) or (spec.levels + 1)
            eff = run["params"][name].get("threads_effective", threads)
            eff = eff if isinstance(eff, int) else threads
            values.update(_ntt_metrics(run["results"][name], spec.ring_degree, limbs, eff))
            run["metrics"][name] = _metric_records(values)
        run["ratios"] = _ratios(run["results"])
        runs.append(run)
    for adapter in libs.values():
        adapter.release()
    return runs
