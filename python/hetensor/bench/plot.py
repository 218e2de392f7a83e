"""PNG plot: per run, the median time of every op for hetensor and each peer (log scale)."""

from __future__ import annotations

import os
from typing import Any, Dict, List


def write_plot(doc: Dict[str, Any], path: str) -> None:
    """Grouped bars (median, min-max whiskers), one panel per preset x threads run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: List[Dict[str, Any]] = doc["runs"]
    if not runs:
        raise ValueError("nothing to plot: no run completed")
    fig, axes = plt.subplots(len(runs), 1, figsize=(13, 4.2 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        libs = list(run["results"])
        ops = list(run["results"].get("hetensor", {}))
        width = 0.8 / max(1, len(libs))
        for i, lib in enumerate(libs):
            xs, ys, lo, hi = [], [], [], []
            for j, op in enumerate(ops):
                rec = run["results"][lib].get(op, {})
                if rec.get("status") != "ok":
                    continue
                xs.append(j + (i - (len(libs) - 1) / 2) * width)
                ys.append(rec["median"] * 1e3)
                lo.append((rec["median"] - rec["min"]) * 1e3)
                hi.append((rec["max"] - rec["median"]) * 1e3)
            ax.bar(xs, ys, width=width, label=lib, yerr=[lo, hi], capsize=2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(ops)))
        ax.set_xticklabels(ops, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("median ms (log)")
        ax.set_title(f"{run['preset']} on {run['device']}, {run['threads']} thread(s)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(libs))
    m = doc["machine"]
    fig.suptitle(f"hetensor {m.get('hetensor_version')} vs peers - {m['cpu_model']}, {m['cores_usable']} cores", fontsize=10)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
