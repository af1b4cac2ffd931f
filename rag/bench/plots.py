"""PNG plots of a bench summary: answer quality against latency, recall@k, and per-question F1 of
generator pairs (where one is better, and on which questions).

matplotlib is imported here only (Agg backend, no display needed), so the rest of the bench
never pays for it.
"""

from __future__ import annotations

from pathlib import Path

QUALITY_PLOT = "quality_latency.png"
RECALL_PLOT = "recall_at_k.png"
PAIRED_PLOT = "paired_f1.png"
MAX_PAIR_PLOTS = 9  # a 3 x 3 grid stays legible; further pairs are in the paired table only


def write_plots(summary: dict, out: Path, f1_by_question: dict[str, dict[str, float]] | None = None) -> list[Path]:
    """The plots that have data: recall@k always, quality/latency when a generator answered, and
    per-question F1 of the first MAX_PAIR_PLOTS pairs when `f1_by_question` (generator -> question -> F1) is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = [_recall_plot(plt, summary, out / RECALL_PLOT)]
    answered = [g for g in summary["generators"] if g.get("f1") is not None and g["generation_ms"]["p50"] is not None]
    if answered:
        written.append(_quality_plot(plt, summary, answered, out / QUALITY_PLOT))
    f1 = f1_by_question or {}
    pairs = [p for p in summary.get("paired") or [] if p["a"] in f1 and p["b"] in f1]
    if pairs:
        written.append(_paired_plot(plt, summary, pairs, f1, out / PAIRED_PLOT))
    return written


def pair_points(a: dict[str, float], b: dict[str, float]) -> list[tuple[float, float, int]]:
    """(F1 of A, F1 of B, number of questions) for the questions both answered.

    F1 piles up on a few values (0, 1, 1/2...), so equal points are merged and drawn by count.
    """
    counts: dict[tuple[float, float], int] = {}
    for q in sorted(set(a) & set(b)):
        point = (round(a[q], 3), round(b[q], 3))
        counts[point] = counts.get(point, 0) + 1
    return [(x, y, n) for (x, y), n in sorted(counts.items())]


def _paired_plot(plt, summary: dict, pairs: list[dict], f1: dict[str, dict[str, float]], path: Path) -> Path:
    """One panel per pair: a dot per distinct (F1 of A, F1 of B), its area by its share of the questions."""
    shown = pairs[:MAX_PAIR_PLOTS]
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.6 * cols, 5.5), 3.6 * rows + 0.4), dpi=100, squeeze=False)
    for ax, p in zip(axes.flat, shown):
        points = pair_points(f1[p["a"]], f1[p["b"]])
        ax.scatter(
            [x for x, _, _ in points],
            [y for _, y, _ in points],
            s=[10 + 600 * n / p["questions"] for _, _, n in points],
            alpha=0.5,
            color="C0",
            edgecolors="none",
        )
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")  # above it, B did better
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_aspect("equal")
        ax.set_xlabel(f"F1 {_short(p['a'])}", fontsize=8)
        ax.set_ylabel(f"F1 {_short(p['b'])}", fontsize=8)
        ax.set_title(f"n={p['questions']}  W/T/L {p['wins']}/{p['ties']}/{p['losses']}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    more = f" (first {len(shown)} of {len(pairs)} pairs)" if len(pairs) > len(shown) else ""
    fig.suptitle(f"Per-question F1, pair by pair{more}\n{_title(summary)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _title(summary: dict) -> str:
    mode = summary["settings"]["mode"]
    return f"{summary['dataset']['name']}, {summary['sample']['questions']} questions ({mode})"


def _quality_plot(plt, summary: dict, generators: list[dict], path: Path) -> Path:
    """F1 (filled) and EM (hollow) against median generation latency; the bar reaches p95."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for i, g in enumerate(generators):
        color = f"C{i % 10}"
        p50, p95 = g["generation_ms"]["p50"], g["generation_ms"]["p95"]
        ax.errorbar(
            [p50],
            [g["f1"]],
            xerr=[[0], [max(p95 - p50, 0)]],
            fmt="o",
            color=color,
            capsize=3,
            label=f"{g['name']} ({g.get('family') or '?'})",
        )
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
