"""The forgetting report's figures, drawn with matplotlib's Agg backend (no display) and returned as PNG bytes.

- `grouped_bars`: one group per checkpoint, one bar per metric, 95% intervals as error bars.
- `validation_curves`: per-source validation loss against step, one panel per run.
- `kl_curves`: KL divergence to the base model against step, one line per run.
Curves come from a run's training `metrics.jsonl` ({"step": int, "val_loss/<source>": float,
"kl_to_base": float, ...} per line); see `read_training_metrics`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from mixforge.io.jsonl import read_jsonl


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def read_training_metrics(path: str | Path) -> list[dict]:
    """The lines of a training metrics.jsonl that carry a step (malformed lines are skipped and counted by
    the caller through the returned length; a report never fails on a half-written log)."""
    return [row for _, row in read_jsonl(path, skip_malformed=True) if isinstance(row.get("step"), int | float)]


def series(rows: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def grouped_bars(
    groups: Sequence[str],
    metrics: Mapping[str, Sequence[float]],
    intervals: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    *,
    title: str = "",
) -> bytes:
    """`metrics[name][i]` is metric `name` of group `groups[i]`; `intervals` the matching (low, high)."""
    plt = _pyplot()
    names = list(metrics)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(groups) + 2), 3.4))
    for j, name in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(groups))]
        values = list(metrics[name])
        errors = None
        if intervals and name in intervals:
            errors = [[max(v - lo, 0.0) for v, (lo, _) in zip(values, intervals[name], strict=True)],
                      [max(hi - v, 0.0) for v, (_, hi) in zip(values, intervals[name], strict=True)]]
        bars = ax.bar(xs, values, width, yerr=errors, capsize=3, label=name)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, max(1.0, max((max(v) for v in metrics.values() if len(v)), default=1.0) * 1.15))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title(title)
    return _png(fig)


def validation_curves(runs: Mapping[str, Sequence[dict]]) -> bytes | None:
    """Per-source validation loss per run; None when no run logged any `val_loss/...`."""
    with_data = {name: rows for name, rows in runs.items()
                 if any(k.startswith("val_loss/") for r in rows for k in r)}
    if not with_data:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(with_data), figsize=(4.2 * len(with_data), 3.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], with_data.items(), strict=True):
        keys = sorted({k for r in rows for k in r if k.startswith("val_loss/")})
        for key in keys:
            xs, ys = series(rows, key)
            ax.plot(xs, ys, marker=".", label=key.removeprefix("val_loss/"))
        ax.set_title(f"{name}: validation loss per source", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    return _png(fig)


def kl_curves(runs: Mapping[str, Sequence[dict]], key: str = "kl_to_base") -> bytes | None:
    """KL to the base model per run; None when no run logged `key`."""
    with_data = {name: series(rows, key) for name, rows in runs.items()}
    with_data = {name: xy for name, xy in with_data.items() if xy[0]}
    if not with_data:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for name, (xs, ys) in with_data.items():
        ax.plot(xs, ys, marker=".", label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("KL(base || tuned), nats per token")  # as the trainer computes it
    ax.set_title("KL divergence to the base model", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)
