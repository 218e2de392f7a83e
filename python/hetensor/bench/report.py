"""The human-readable report: one table per run, ratios to each peer, metrics, differences."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from .ops import HEAVY, OP_BY_NAME


def fmt_ms(seconds: Optional[float]) -> str:
    """Seconds as milliseconds with three significant digits."""
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    if ms == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(ms)))))
    return f"{ms:.{digits}f}"


def fmt_value(value: Optional[float], unit: str) -> str:
    """A metric for the table: bytes as MiB, rates in G/s, shares in percent."""
    if value is None:
        return "-"
    if unit == "bytes":
        return f"{value / 2**20:.2f} MiB"
    if unit == "butterflies/s":
        return f"{value / 1e9:.3f} G/s"
    if unit == "fraction":
        return f"{100 * value:.1f} %"
    if unit == "bits":
        return f"{value:.1f}"
    return f"{value:g}"


def _cell(rec: Optional[Dict[str, Any]]) -> str:
    if rec is None:
        return "-"
    status = rec.get("status")
    if status == "ok":
        return fmt_ms(rec["median"])
    return "n/a" if status == "unavailable" else "error"


def _table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    """The same table as GitHub markdown."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _preset_params(run: Dict[str, Any]) -> Dict[str, Any]:
    """hetensor's parameters of the run, or the preset's own when hetensor did not run (--no-hetensor)."""
    hp = run["params"].get("hetensor") or {}
    if hp.get("ring_degree"):
        return hp
    try:
        from .spec import preset_spec

        spec = preset_spec(run["preset"])
    except Exception:  # an unknown preset name in an old JSON: print what there is
        return hp
    return {"ring_degree": spec.ring_degree, "log_n": spec.log_n, "levels": spec.levels, "dnum": spec.dnum,
            "log_qp": spec.log_qp}


def run_tables(run: Dict[str, Any]) -> Dict[str, Any]:
    """Header and rows of the time table and of the metrics table of one run."""
    libs = list(run["results"])
    peers = [lib for lib in libs if lib != "hetensor"]
    header = ["op", "hetensor ms", "min-max", "ht peak+ MiB"]
    ring = _preset_params(run).get("ring_degree")
    mark = {p: "*" if run["params"].get(p, {}).get("ring_degree") not in (None, ring) else "" for p in peers}
    for peer in peers:
        header += [f"{peer} ms", f"ht/{peer}{mark[peer]}"]
    rows = []
    ops = list(run["results"].get("hetensor", {}) or next(iter(run["results"].values()), {}))
    for op in ops:
        ours = run["results"].get("hetensor", {}).get(op)
        ok = bool(ours) and ours.get("status") == "ok"
        row = [op, _cell(ours),
               f"{fmt_ms(ours['min'])}-{fmt_ms(ours['max'])}" if ok else "",
               f"{ours['peak_delta_bytes'] / 2**20:.1f}" if ok and "peak_delta_bytes" in ours else ""]
        for peer in peers:
            rec = run["results"][peer].get(op)
            ratio = run["ratios"].get(peer, {}).get(op)
            row += [_cell(rec), f"{ratio:.2f}" if ratio is not None else ""]
        rows.append(row)
    mheader = ["metric"] + libs
    names: List[str] = []
    for lib in libs:
        for name in run["metrics"].get(lib, {}):
            if name not in names:
                names.append(name)
    mrows = []
    for name in names:
        row = [name]
        for lib in libs:
            rec = run["metrics"].get(lib, {}).get(name)
            row.append(fmt_value(rec["value"], rec["unit"]) if rec else "-")
        mrows.append(row)
    return {"header": header, "rows": rows, "mheader": mheader, "mrows": mrows}


def render(doc: Dict[str, Any]) -> str:
    """The whole report as plain text."""
    out: List[str] = []
    m = doc["machine"]
    out.append(f"machine: {m['cpu_model']} ({m['cores_usable']} usable cores, {m.get('clock_mhz')} MHz, "
               f"flags {','.join(m['cpu_flags'])}), Python {m['python']}, hetensor {m.get('hetensor_version')}")
    libs = doc["libraries"]
    out.append("libraries: " + "; ".join(
        f"{k} {v['version'] or ''} [{v['status']}]".replace(" ]", "]") for k, v in libs.items()))
    for k, v in libs.items():
        if v["status"] != "ok":
            out.append(f"  {k}: {v['reason']}")
    for s in doc["skipped"]:
        out.append(f"skipped {s['device']}: {s['reason']}")
    for run in doc["runs"]:
        out.append("")
        hp = _preset_params(run)
        out.append(f"== {run['preset']} on {run['device']}, {run['threads']} thread(s): N=2^{hp.get('log_n')}, "
                   f"{hp.get('levels')} levels, dnum {hp.get('dnum')}, log QP {hp.get('log_qp')} ==")
        t = run_tables(run)
        out.append(_table(t["header"], t["rows"]))
        out.append("ht/peer = hetensor median / peer median (below 1: hetensor faster); n/a: see notes; "
                   "* = the peer ran at another ring degree (see notes)")
        out.append("")
        out.append(_table(t["mheader"], t["mrows"]))
        out.extend(_notes(run))
    return "\n".join(out)


def _notes(run: Dict[str, Any]) -> List[str]:
    lines: List[str] = []
    for lib, params in run["params"].items():
        if "error" in params:
            lines.append(f"  {lib}: {params['error']}")
            continue
        for d in params.get("differences", []):
            lines.append(f"  {lib} differs: {d}")
        if lib != "hetensor":
            lines.append(f"  {lib} security: {params.get('security')}; threads used: {params.get('threads_effective')}")
    for lib, recs in run["results"].items():
        for op, rec in recs.items():
            if rec.get("status") in ("unavailable", "error") and op in OP_BY_NAME:
                lines.append(f"  {lib} {op}: {rec['status']}: {rec['reason']}")
            elif rec.get("status") == "ok" and rec.get("note") and op in HEAVY:
                # heavy ops differ in what each library computes: the note says what it was
                lines.append(f"  {lib} {op}: {rec['note']}")
    return ["", "notes:"] + lines if lines else []


def render_markdown(doc: Dict[str, Any]) -> str:
    """The report as GitHub markdown (what bench/RESULTS.md quotes)."""
    out: List[str] = []
    m = doc["machine"]
    out.append(f"Machine: {m['cpu_model']}, {m['cores_usable']} usable cores at {m.get('clock_mhz')} MHz, "
               f"flags {', '.join(m['cpu_flags'])}; {(m.get('memory_bytes') or 0) / 2**30:.0f} GiB; "
               f"{m['os']}; Python {m['python']}, numpy {m['numpy']}, hetensor {m.get('hetensor_version')}.")
    out.append("")
    out.append("Libraries: " + "; ".join(
        f"{k} {v['version'] or ''} ({v['status']})".replace(" (", " (", 1) for k, v in doc["libraries"].items()) + ".")
    for k, v in doc["libraries"].items():
        if v["status"] != "ok":
            out.append(f"- {k}: {v['reason']}")
    for s in doc["skipped"]:
        out.append(f"- skipped {s['device']}: {s['reason']}")
    out.append(f"\nCommand: `{' '.join(doc['command'])}` (median of {doc['settings']['repeat']} after "
               f"{doc['settings']['warmup']} warm-up; times in ms; ht/peer below 1 means hetensor is faster; "
               "ht peak+ = resident memory high-water above the start of the op, in MiB)")
    for run in doc["runs"]:
        hp = _preset_params(run)
        out.append(f"\n### {run['preset']}, {run['threads']} thread(s), {run['device']}: N=2^{hp.get('log_n')}, "
                   f"{hp.get('levels')} levels, dnum {hp.get('dnum')}, log QP {hp.get('log_qp')}\n")
        t = run_tables(run)
        out.append(markdown_table(t["header"], t["rows"]))
        out.append("")
        out.append(markdown_table(t["mheader"], t["mrows"]))
        notes = _notes(run)
        if notes:
            out.append("\nNotes:\n")
            out.extend(f"- {line.strip()}" for line in notes[2:])
    return "\n".join(out) + "\n"
