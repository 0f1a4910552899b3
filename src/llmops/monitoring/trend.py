"""One self-contained HTML page: trend plots of the key metrics across runs and links to every report.

Plots are matplotlib PNGs embedded as base64, so the page can be mailed, attached to a Prefect
artifact or opened from S3 without its neighbours.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from llmops.monitoring.history import HistoryEntry

PANELS = [
    ("Evaluation", ["answers.token_f1", "retrieval.recall@5", "groundedness.groundedness", "judge.faithfulness"]),
    ("Data drift", ["drift_share", "new_vocab_share", "queries_embedding_score", "documents_embedding_score"]),
    ("Production quality", ["thumbs_down_share", "refusal_rate", "rating_rate"]),
]


def series(entries: Sequence[HistoryEntry]) -> dict[str, list[float | None]]:
    """Every plotted value per run (None where a run did not measure it)."""
    out: dict[str, list[float | None]] = {}

    def put(name: str, i: int, value: object) -> None:
        out.setdefault(name, [None] * len(entries))[i] = float(value) if isinstance(value, int | float) else None

    for i, e in enumerate(entries):
        for k, v in e.metrics.items():
            put(k, i, v)
        put("drift_share", i, e.drift.get("drift_share"))
        put("new_vocab_share", i, e.drift.get("new_vocab_share"))
        for name, score in (e.drift.get("embeddings") or {}).items():
            put(f"{name}_embedding_score", i, score)
        for k in ("thumbs_down_share", "refusal_rate", "rating_rate"):
            put(k, i, (e.drift.get("quality") or {}).get(k))
    return out


def _plot(entries: Sequence[HistoryEntry], title: str, names: Sequence[str], data: dict[str, list[float | None]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.8), dpi=90)
    x = list(range(len(entries)))
    for name in names:
        ys = data.get(name)
        if ys and any(y is not None for y in ys):
            pts = [(i, y) for i, y in zip(x, ys, strict=True) if y is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    for i, e in enumerate(entries):
        if e.trigger.get("retrain"):
            ax.axvline(i, color="red", alpha=0.3, linestyle="--")
    ax.set_xticks(x, [f"{e.ts[5:16]}\n{e.flow}" for e in entries], fontsize=7)
    ax.set_title(title + ("  (red: retrain triggered)" if any(e.trigger.get("retrain") for e in entries) else ""), fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _link(uri: str) -> str:
    href = uri if "://" in uri else Path(uri).resolve().as_uri()
    return f'<a href="{html.escape(href)}">{html.escape(Path(uri).name)}</a>'


def render_trend(entries: Sequence[HistoryEntry], out: Path, *, title: str = "llmops runs") -> Path:
    """Write the trend page to ``out`` and return it."""
    data = series(entries)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}.drift{color:#b00}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{len(entries)} runs, oldest first.</p>",
    ]
    if entries:
        for panel, names in PANELS:
            parts.append(f"<h2>{panel}</h2><img alt='{panel}' src='data:image/png;base64,{_plot(entries, panel, names, data)}'>")
    parts.append(
        "<h2>Runs</h2><table><tr><th>time</th><th>flow</th><th>data rev</th><th>metrics</th>"
        "<th>drift</th><th>trigger</th><th>reports</th></tr>"
    )
    for e in reversed(entries):
        metrics = "<br>".join(f"{k}={v:.4f}" for k, v in e.metrics.items()) or "-"
        signals = e.drift.get("drifted_signals") or []
        drift = "no drift"
        if e.drift.get("drift_detected"):
            drift = f"<span class='drift'>drift: {html.escape(', '.join(signals))}</span>"
        trigger = html.escape(e.trigger.get("reason", "-")) if e.trigger.get("retrain") else "-"
        links = " · ".join(_link(u) for u in e.reports.values()) or "-"
        parts.append(
            f"<tr><td>{html.escape(e.ts[:19])}</td><td>{html.escape(e.flow)}</td><td>{html.escape(str(e.data_rev))}</td>"
            f"<td>{metrics}</td><td>{drift}</td><td>{trigger}</td><td>{links}</td></tr>"
        )
    parts.append("</table></body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
