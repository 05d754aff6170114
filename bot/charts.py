"""History charts as PNG bytes, from the neutral `Reply.series` (eval score vs bar, metric vs baseline).

matplotlib is imported lazily (it takes ~0.5 s) and used through the object API with the Agg
canvas: no pyplot global state, no GUI backend, safe from worker threads. Any surface can call
`attach_chart(reply)` to get the PNG for a `history` reply (Slack `files_upload_v2`, a Teams
attachment); the text sparkline stays the fallback.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from bot.replies import Reply, Series

CHART_FILENAME = "history.png"


def render_history_png(series: Sequence[Series], title: str | None = None, dpi: int = 100) -> bytes:
    """One small panel per series: values oldest -> newest, the bar/baseline as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = list(series) or [Series("no data", ())]
    fig = Figure(figsize=(7, 2.2 * len(panels) + (0.4 if title else 0)), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False)
    for ax, s in zip((row[0] for row in axes), panels, strict=True):
        xs = list(range(1, len(s.values) + 1))
        if s.values:
            ax.plot(xs, list(s.values), marker="o", linewidth=1.8, color="#1f6feb", label=s.label)
        else:
            ax.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=ax.transAxes, color="#777")
        if s.reference is not None:
            ax.axhline(s.reference, linestyle="--", color="#d1242f", linewidth=1.2, label=s.reference_label or "ref")
        unit = s.unit.strip()
        ax.set_title(s.label + (f" ({unit})" if unit else ""), fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        if xs:
            ax.set_xlim(0.5, len(xs) + 0.5)
            ax.set_xticks(xs if len(xs) <= 12 else xs[:: max(1, len(xs) // 12)])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8, frameon=False)
        ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.supxlabel("run / measurement, oldest → newest", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def attach_chart(reply: Reply, dpi: int = 100) -> bytes | None:
    """The PNG for a reply that carries series (the `history` reply), else None."""
    if not reply.series:
        return None
    return render_history_png(reply.series, title=reply.text.replace("`", "") or None, dpi=dpi)
