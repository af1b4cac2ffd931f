"""PNG plots of a bench summary: answer quality against latency, and recall@k.

matplotlib is imported here only (Agg backend, no display needed), so the rest of the bench
never pays for it.
"""
from __future__ import annotations

from pathlib import Path

QUALITY_PLOT = "quality_latency.png"
RECALL_PLOT = "recall_at_k.png"


def write_plots(summary: dict, out: Path) -> list[Path]:
    """The plots that have data: recall@k always, quality/latency when a generator answered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = [_recall_plot(plt, summary, out / RECALL_PLOT)]
    answered = [g for g in summary["generators"] if g.get("f1") is not None and g["generation_ms"]["p50"] is not None]
    if answered:
        written.append(_quality_plot(plt, summary, answered, out / QUALITY_PLOT))
    return written


def _title(summary: dict) -> str:
    mode = summary["settings"]["mode"]
    return f"{summary['dataset']['name']}, {summary['sample']['questions']} questions ({mode})"


def _quality_plot(plt, summary: dict, generators: list[dict], path: Path) -> Path:
    """F1 (filled) and EM (hollow) against median generation latency; the bar reaches p95."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for i, g in enumerate(generators):
        color = f"C{i % 10}"
        p50, p95 = g["generation_ms"]["p50"], g["generation_ms"]["p95"]
        ax.errorbar([p50], [g["f1"]], xerr=[[0], [max(p95 - p50, 0)]], fmt="o", color=color, capsize=3,
                    label=f"{g['name']} ({g.get('family') or '?'})")
        ax.plot([p50], [g["em"]], marker="o", mfc="none", color=color, linestyle="none")
        ax.annotate(_short(g["name"]), (p50, g["f1"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("generation latency per question, ms (dot: p50, bar: to p95)")
    ax.set_ylabel("F1 (filled) / EM (hollow)")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"Answer quality vs latency: {_title(summary)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _recall_plot(plt, summary: dict, path: Path) -> Path:
    retrieval = summary["retrieval"]
    ks = summary["settings"]["ks"]
    values = [retrieval[f"recall@{k}"] or 0.0 for k in ks]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(ks, values, marker="o")
    for k, v in zip(ks, values):
        ax.annotate(f"{v:.3f}", (k, v), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_xlabel("k (distinct documents)")
    ax.set_ylabel("recall@k")
    ax.set_xticks(ks)
    ax.set_ylim(0, 1.1)
    ax.grid(alpha=0.3)
    ax.set_title(f"Retrieval recall@k: {_title(summary)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _short(name: str) -> str:
    return name if len(name) <= 28 else "…" + name[-27:]
