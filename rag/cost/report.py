"""cost.json, cost.md and two PNG plots from the samples, with findings computed from the medians.

Every title says the weights are random: these are costs, never answer quality. matplotlib is
imported here only, inside the plotting function (Agg backend, no display needed).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from rag.cost.archs import ARCHS, ENCODER_DECODER, hf_config
from rag.cost.cache import attention_shape, cross_cache_bytes, kv_cache_bytes
from rag.cost.feeds import FID, cached_tokens
from rag.cost.numbers import _machine, _median, _millions, _num, _round, _versions

TITLE = "Architecture cost curves (random weights: cost only, not quality)"
NOTE = (
    "Every model here has RANDOM weights built from its public hyper-parameters: these figures are "
    "time and memory costs only and say nothing about answer quality."
)
JSON_FILE, MARKDOWN_FILE, LATENCY_PLOT, MEMORY_PLOT = "cost.json", "cost.md", "latency.png", "memory.png"
MB = 2**20
CROSSING_MARGIN = 0.10  # a crossing counts when each side leads by more than this (noise on a shared CPU)


def write_reports(
    out: Path, settings: Any, lines: list[Any], info: dict[str, dict], results: dict, context: dict[str, Any]
) -> tuple[dict[str, Any], list[Path]]:
    """Aggregate the samples (medians), write the JSON, Markdown and PNGs; returns (summary, paths)."""
    summary = summarise(settings, lines, info, results, context)
    (out / JSON_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / MARKDOWN_FILE).write_text(markdown(summary), encoding="utf-8")
    plots = write_plots(summary, out)
    return summary, [out / JSON_FILE, out / MARKDOWN_FILE, *plots]


def summarise(
    settings: Any, lines: list[Any], info: dict[str, dict], results: dict, context: dict[str, Any]
) -> dict[str, Any]:
    """Medians per (architecture, mode, k), the exact cache sizes, and the findings."""
    n = settings.new_tokens
    archs, rows = {}, []
    for line in lines:
        cfg = hf_config(line.config)  # with transformers' defaults filled in (layer_types, ...)
        enc_dec = line.family == ENCODER_DECODER
        if line.arch not in archs:
            layers, kv_heads, head_dim = attention_shape(cfg, enc_dec)
            got = info.get(line.arch, {})
            archs[line.arch] = {
                "family": line.family,
                "parameters": got.get("parameters"),
                "weights_mb": round(got["parameters"] * 4 / MB, 1) if got.get("parameters") else None,
                "rss_after_build_mb": _round(got.get("rss_after_build_mb")),
                "build_s": _round(got.get("build_s"), 2),
                "attention": got.get("attention"),
                "window": line.feeds[0].window,
                "kv_bytes_per_token": kv_cache_bytes(cfg, 1, encoder_decoder=enc_dec),
                "cross_bytes_per_encoder_token": cross_cache_bytes(cfg, 1) if enc_dec else 0,
                "decoder_layers": layers,
                "kv_heads": kv_heads,
                "head_dim": head_dim,
                "source": ARCHS[line.arch].source if line.arch in ARCHS else f"config file {line.source}",
            }
        for feed in line.feeds:
            samples = results.get((line.arch, line.mode, feed.k), [])
            kv = kv_cache_bytes(cfg, cached_tokens(line.family, feed, n), encoder_decoder=enc_dec)
            cross = cross_cache_bytes(cfg, feed.input_tokens) if enc_dec else 0
            row = {
                "arch": line.arch,
                "family": line.family,
                "mode": line.mode,
                "label": feed.label,
                "k": feed.k,
                "input_lengths": list(feed.input_lengths),
                "input_tokens": feed.input_tokens,
                "window": feed.window,
                "passage_tokens_asked": feed.passage_tokens_asked,
                "passage_tokens_given": feed.passage_tokens_given,
                "all_passages_whole": feed.passage_tokens_given == feed.passage_tokens_asked,
                "kv_cache_mb": round(kv / MB, 3),
                "cross_cache_mb": round(cross / MB, 3),
                "kv_cache_bytes": kv,
                "cross_cache_bytes": cross,
                "runs": len(samples),
            }
            if samples:
                ttft = [s["ttft_s"] * 1000 for s in samples]
                per = [s["per_token_s"] * 1000 for s in samples]
                answer = [s["total_s"] * 1000 for s in samples]
                row.update(
                    {
                        "ttft_ms": _median(ttft),
                        "ttft_ms_min": round(min(ttft), 1),
                        "ttft_ms_max": round(max(ttft), 1),
                        "per_token_ms": _median(per),
                        "total_ms": _median(answer),
                        "total_spread_pct": round(100 * (max(answer) - min(answer)) / statistics.median(answer), 1),
                        "peak_rss_mb": _median([s["peak_rss_mb"] for s in samples]),
                        "peak_above_start_mb": _median([s["peak_rss_mb"] - s["rss_before_mb"] for s in samples]),
                        "cache_matches_formula": all(
                            s["kv_cache_bytes"] == kv and s["cross_cache_bytes"] == cross for s in samples
                        ),
                    }
                )
            rows.append(row)
    methods = sorted({s["memory_method"] for group in results.values() for s in group})
    summary = {
        "title": TITLE,
        "note": NOTE,
        "settings": {
            "archs": list(archs),
            "ks": list(settings.ks),
            "modes": list(settings.modes),
            "repeats": settings.repeats,
            "new_tokens": n,
            "threads": settings.threads,
            "passage_tokens": settings.passage_tokens,
            "question_tokens": settings.question_tokens,
            "dtype": "float32",
            "seed": settings.seed,
            "order": "every (architecture, mode, k) once per repeat, in a fresh shuffled order; one warm-up run per line first",
            "timing": "time to first token: call to first generated token (encoder pass(es) + first decoder step, "
            "or prefill); per token: mean over the remaining tokens; total: the whole call",
        },
        "memory_method": "; ".join(methods) or None,
        "machine": _machine(context),
        "versions": _versions(),
        "archs": archs,
        "rows": rows,
    }
    summary["findings"] = findings(summary)
    return summary


# --- findings ------------------------------------------------------------------------------------


def findings(summary: dict[str, Any]) -> dict[str, Any]:
    """Growth of each line, where lines cross, and the cheapest choice at each k, from the medians."""
    lines = _lines(summary)
    growth = {label: _growth(rows) for label, rows in lines.items()}
    picks = {}
    for k in summary["settings"]["ks"]:
        at_k = [r for rows in lines.values() for r in rows if r["k"] == k and r.get("total_ms") is not None]
        if not at_k:
            continue
        whole = [r for r in at_k if r["all_passages_whole"]]
        picks[str(k)] = {
            "fastest": _brief(min(at_k, key=lambda r: r["total_ms"])),
            "fastest_reading_every_passage": _brief(min(whole, key=lambda r: r["total_ms"])) if whole else None,
            "least_memory": _brief(min(at_k, key=lambda r: r["peak_rss_mb"])),
        }
    return {
        "growth": growth,
        "crossings": crossings(lines, "total_ms"),
        "ttft_crossings": crossings(lines, "ttft_ms"),
        "picks": picks,
    }


def _growth(rows: list[dict]) -> dict[str, Any]:
    """How time to first token grows with the tokens read: the log-log slope (1 linear, 2 quadratic)."""
    timed = [r for r in rows if r.get("ttft_ms")]
    distinct = {}
    for r in timed:
        distinct.setdefault(r["input_tokens"], r)
    sizes = sorted(distinct)
    result: dict[str, Any] = {
        "input_tokens": sizes,
        "cut_from_k": next((r["k"] for r in rows if not r["all_passages_whole"]), None),
    }
    if len(sizes) < 2:
        return {**result, "ttft_slope": None, "words": "one input size only"}
    lo, hi = distinct[sizes[0]], distinct[sizes[-1]]
    slope = math.log(hi["ttft_ms"] / lo["ttft_ms"]) / math.log(sizes[-1] / sizes[0])
    per_lo, per_hi = lo["ttft_ms"] / sizes[0], hi["ttft_ms"] / sizes[-1]
    per_token_ratio = hi["per_token_ms"] / lo["per_token_ms"]
    if slope < 1.15:
        words = "about linear in the tokens read"
    elif slope < 1.6:
        words = "faster than linear: attention's quadratic term is showing"
    else:
        words = "close to quadratic"
    return {
        **result,
        "ttft_slope": round(slope, 2),
        "ttft_ms_per_input_token": [round(per_lo, 3), round(per_hi, 3)],
        "per_token_ms_ratio": round(per_token_ratio, 2),
        "words": words,
    }


def crossings(lines: dict[str, list[dict]], key: str) -> list[dict[str, Any]]:
    """Pairs of lines whose order on `key` flips between two consecutive k, each side by > CROSSING_MARGIN."""
    found = []
    labels = sorted(lines)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            ra = {r["k"]: r.get(key) for r in lines[a]}
            rb = {r["k"]: r.get(key) for r in lines[b]}
            ks = sorted(k for k in ra if k in rb and ra[k] and rb[k])
            for k0, k1 in zip(ks, ks[1:]):
                before, after = _lead(ra[k0], rb[k0]), _lead(ra[k1], rb[k1])
                if before and after and before != after:
                    cheaper, dearer = (a, b) if before == "a" else (b, a)
                    found.append(
                        {
                            "between": [k0, k1],
                            "cheaper_before": cheaper,
                            "cheaper_after": dearer,
                            "words": f"{dearer} becomes cheaper than {cheaper} between k={k0} and k={k1}",
                        }
                    )
    return found


def _lead(x: float, y: float) -> str | None:
    if x < y * (1 - CROSSING_MARGIN):
        return "a"
    if y < x * (1 - CROSSING_MARGIN):
        return "b"
    return None


def _brief(row: dict) -> dict[str, Any]:
    return {
        "label": row["label"],
        "total_ms": row["total_ms"],
        "ttft_ms": row["ttft_ms"],
        "peak_rss_mb": row["peak_rss_mb"],
        "passage_tokens_given": row["passage_tokens_given"],
        "passage_tokens_asked": row["passage_tokens_asked"],
    }


def _lines(summary: dict[str, Any]) -> dict[str, list[dict]]:
    lines: dict[str, list[dict]] = {}
    for row in summary["rows"]:
        lines.setdefault(row["label"], []).append(row)
    return {label: sorted(rows, key=lambda r: r["k"]) for label, rows in lines.items()}


# --- Markdown ------------------------------------------------------------------------------------


def markdown(summary: dict[str, Any]) -> str:
    """The report: settings, architectures, the table of medians, and the findings in words."""
    s, m = summary["settings"], summary["machine"]
    n = s["new_tokens"]
    out = [
        f"# {summary['title']}",
        "",
        f"**{summary['note']}**",
        "",
        f"k passages of {s['passage_tokens']} random tokens plus a {s['question_tokens']}-token question; "
        f"{n} generated tokens forced for every model; {s['dtype']}; torch {s['threads']} threads; "
        f"{s['repeats']} repeats, interleaved ({s['order']}); medians.",
        f"Machine: {m.get('cpu')}, {m.get('cpus_usable')} usable cores; load average (1, 5, 15 min) "
        f"{m.get('load_before')} before, {m.get('load_after')} after ({m.get('started')} to {m.get('finished')}).",
        f"Timing: {s['timing']}.",
        f"Memory: {summary.get('memory_method')}; one process per architecture, so the peak includes that "
        "model's weights and the Python/torch runtime. KV and cross-attention cache sizes are exact (from the "
        "config) and were checked against the cache tensors generate returned.",
        "",
        "## Architectures",
        "",
        "| architecture | family | parameters | fp32 weights MB | input window (tokens) | attention | "
        "KV cache KB per token | cross cache KB per encoder token | hyper-parameters from |",
        "|---|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, a in summary["archs"].items():
        out.append(
            f"| {name} | {a['family']} | {_millions(a['parameters'])} | {_num(a['weights_mb'], 0)} | {a['window']} | "
            f"{a['attention']} | {a['kv_bytes_per_token'] / 1024:.0f} | "
            f"{(a['cross_bytes_per_encoder_token'] / 1024):.0f} | {a['source']} |"
        )
    out += [
        "",
        f"## Results (random weights; medians of {s['repeats']} interleaved runs)",
        "",
        f"TTFT: time to first token. Total: time to all {n} tokens. Spread: (max - min) / median of the total. "
        "Given/asked: passage tokens the model read after the window cut / passage tokens offered.",
        "",
        "| architecture | feeding | k | input tokens | passage tokens given/asked | TTFT ms | ms per token | "
        f"total ms ({n} tokens) | spread % | peak RSS MB | KV cache MB | cross cache MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rows"]:
        feeding = ("enc-dec " if r["family"] == ENCODER_DECODER else "dec-only ") + (
            "FiD" if r["mode"] == FID else "concat"
        )
        inputs = (
            f"{r['input_tokens']}"
            if len(r["input_lengths"]) == 1
            else f"{len(r['input_lengths'])} x {r['input_lengths'][0]}"
        )
        out.append(
            f"| {r['arch']} | {feeding} | {r['k']} | {inputs} | {r['passage_tokens_given']}/{r['passage_tokens_asked']} | "
            f"{_num(r.get('ttft_ms'), 0)} | {_num(r.get('per_token_ms'), 1)} | {_num(r.get('total_ms'), 0)} | "
            f"{_num(r.get('total_spread_pct'), 0)} | {_num(r.get('peak_rss_mb'), 0)} | {r['kv_cache_mb']:.1f} | "
            f"{r['cross_cache_mb']:.1f} |"
        )
    out += ["", "## Findings (computed from the medians above; random weights)", ""]
    f = summary["findings"]
    out.append(
        "**Growth of time to first token with the tokens read** (log-log slope from the smallest to the "
        "largest input: 1 is linear, 2 quadratic; a concatenated input stops growing once it is cut at its window):"
    )
    out.append("")
    for label, g in f["growth"].items():
        if g.get("ttft_slope") is None:
            out.append(f"- {label}: {g['words']}.")
            continue
        cut = f"; cut at the window from k={g['cut_from_k']}" if g.get("cut_from_k") else ""
        out.append(
            f"- {label}: slope {g['ttft_slope']} ({g['words']}); {g['ttft_ms_per_input_token'][0]} → "
            f"{g['ttft_ms_per_input_token'][1]} ms per input token from {g['input_tokens'][0]} to "
            f"{g['input_tokens'][-1]} tokens; time per generated token x{g['per_token_ms_ratio']}{cut}."
        )
    out += [
        "",
        "**Caches grow linearly**: the decoder's KV cache by the KV size per token above for every token it "
        "holds (decoder-only: the whole prompt; encoder-decoder: only the generated tokens), the cross-attention "
        "cache by the size per encoder token for everything the encoder read (FiD: all k passages, uncut).",
        "",
    ]
    spreads = [r["total_spread_pct"] for r in summary["rows"] if r.get("total_spread_pct") is not None]
    if spreads:
        out += [
            f"**Noise**: the totals' spread across repeats has a median of {statistics.median(spreads):.0f}% "
            f"(largest {max(spreads):.0f}%); differences smaller than that are not findings.",
            "",
        ]
    out.append(f"**Crossings** (time to all {n} tokens; each side ahead by more than {CROSSING_MARGIN:.0%}):")
    out.append("")
    out += [f"- {c['words']}." for c in f["crossings"]] or ["- none."]
    out += [
        "",
        "**Cheapest at each k** (time to all tokens; 'every passage' means no passage was cut away):",
        "",
        "| k | fastest | fastest reading every passage whole | least peak memory |",
        "|---:|---|---|---|",
    ]
    for k, p in f["picks"].items():
        every = p["fastest_reading_every_passage"]
        every_text = f"{every['label']} ({every['total_ms']:.0f} ms)" if every else "none"
        out.append(
            f"| {k} | {p['fastest']['label']} ({p['fastest']['total_ms']:.0f} ms) | {every_text} | "
            f"{p['least_memory']['label']} ({p['least_memory']['peak_rss_mb']:.0f} MB) |"
        )
    out += ["", f"Plots: {LATENCY_PLOT}, {MEMORY_PLOT}. Raw runs: samples.jsonl; everything above: {JSON_FILE}.", ""]
    return "\n".join(out)


# --- plots ---------------------------------------------------------------------------------------


def write_plots(summary: dict[str, Any], out: Path) -> list[Path]:
    """latency.png (TTFT and time per token against k) and memory.png (peak RSS and caches against k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    lines = _lines(summary)
    n = summary["settings"]["new_tokens"]
    panels = {
        LATENCY_PLOT: [
            ("ttft_ms", "time to first token, ms", True),
            ("per_token_ms", "time per generated token, ms", True),
        ],
        MEMORY_PLOT: [
            ("peak_rss_mb", "peak resident memory, MB", False),
            ("cache_total_mb", f"KV + cross-attention cache after {n} tokens, MB", True),
        ],
    }
    titles = {LATENCY_PLOT: "Latency against k", MEMORY_PLOT: "Memory against k"}
    written = []
    for name, specs in panels.items():
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), dpi=100)
        for ax, (key, ylabel, log) in zip(axes, specs):
            for label, rows in lines.items():
                arch_index = list(summary["archs"]).index(rows[0]["arch"])
                values = [
                    (r["k"], r["kv_cache_mb"] + r["cross_cache_mb"] if key == "cache_total_mb" else r.get(key))
                    for r in rows
                ]
                values = [(k, v) for k, v in values if v]
                if not values:
                    continue
                style = "--" if rows[0]["mode"] == FID else ("-" if rows[0]["family"] == ENCODER_DECODER else ":")
                marker = "s" if rows[0]["family"] == ENCODER_DECODER else "o"
                ax.plot(
                    [k for k, _ in values],
                    [v for _, v in values],
                    style,
                    marker=marker,
                    markersize=4,
                    color=f"C{arch_index % 10}",
                    label=label,
                )
            ax.set_xlabel(f"k (passages of {summary['settings']['passage_tokens']} tokens)")
            ax.set_ylabel(ylabel)
            ax.set_xscale("log")
            ax.set_xticks(summary["settings"]["ks"])
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            if log:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.grid(alpha=0.3, which="both")
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        title = f"{titles[name]}: RANDOM WEIGHTS, cost only, not quality"
        fig.suptitle(
            f"{title}\n(square/solid: enc-dec concat; square/dashed: enc-dec FiD; circle/dotted: dec-only concat; "
            f"{summary['settings']['threads']} threads, fp32, medians)",
            fontsize=10,
        )
        fig.tight_layout()
        path = out / name
        fig.savefig(path, metadata={"Title": title, "Description": NOTE})
        plt.close(fig)
        written.append(path)
    return written
