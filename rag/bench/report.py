"""Turn a run's records into the figures a reader needs: summary.json, report.md, a terminal table.

Everything here is recomputed from results.jsonl (plus this run's retrieval), never from counters
kept during the run, so a resumed run reports exactly what a run in one go would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rag.bench.formatting import _clean, _f, _latency, _md_table, _mean, _plain, _signed
from rag.bench.metrics import answer_in_passages, percentile

SUMMARY = "summary.json"
REPORT = "report.md"
# Per-question F1 of each generator, for the paired scatter plots only: held in the summary dict
# until `write_outputs` takes it out, never written to summary.json (it grows with the sample).
PER_QUESTION_F1 = "_f1_by_question"
# The current answers (results.jsonl records) for report.html, taken out like PER_QUESTION_F1.
CURRENT_RECORDS = "_records"


# --- summary ---------------------------------------------------------------------------------


def build_summary(
    *,
    bench,
    config,
    ks,
    questions,
    names,
    retrieval,
    records,
    sessions,
    errors,
    index_info,
    retrieval_only,
    notes,
    started: datetime,
    seconds: float,
) -> dict:
    """The whole run as one JSON-ready dict (what summary.json holds).

    Only each generator's current answers count (`resume.current_records`): answers made with a
    prompt since changed may still be in results.jsonl, superseded. Load time and memory come from
    the latest load that answered questions (`resume.measured_session`).
    """
    from rag.bench import system
    from rag.bench.paired import compare_all
    from rag.bench.resume import current_keys, current_records, measured_session

    wanted = {q.id for q in questions}
    mode = "retrieval-only" if retrieval_only else ("oracle" if config.oracle else "retrieved")
    keys = current_keys(records, sessions)
    current = [r for r in current_records(records, sessions, keys) if r["question_id"] in wanted]
    generators, by_name = [], {}
    for name in names:
        own = by_name[name] = [r for r in current if r["generator"] == name]
        session = measured_session(sessions, name, keys.get(name))
        generators.append(generator_summary(name, own, session, errors.get(name), len(questions)))
    answered = {name: own for name, own in by_name.items() if own}
    position = {q.id: i for i, q in enumerate(questions)}
    return _clean(
        {
            "dataset": {
                "path": str(config.dataset),
                "name": bench.name,
                "format": bench.format,
                "questions": len(bench.questions),
                "documents": index_info["documents"],
            },
            "sample": {
                "questions": len(questions),
                "limit": config.limit,
                "seed": config.sample_seed,
                "question_ids": [q.id for q in questions] if len(questions) <= 100 else None,
            },
            "settings": {
                "mode": mode,
                "generators": list(names),
                "ks": list(ks),
                "passages": config.passages,
                "max_new_tokens": config.max_new_tokens,
                "decoding": "greedy (temperature 0)",
                "retriever": config.retriever.to_dict(),
                **({"reranker": retrieval.reranker} if retrieval.reranker else {}),
            },
            "index": index_info,
            "retrieval": retrieval_summary(retrieval, questions, ks, config.passages),
            **_before_rerank(retrieval, questions, ks, config.passages),
            "generators": generators,
            "paired": compare_all(answered),
            PER_QUESTION_F1: {name: {r["question_id"]: r["f1"] for r in own} for name, own in answered.items()},
            CURRENT_RECORDS: sorted(
                (r for name in names for r in by_name[name]), key=lambda r: position[r["question_id"]]
            ),
            "notes": notes,
            "machine": system.machine(),
            "versions": system.versions(),
            "command": config.command,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
        }
    )


def _before_rerank(retrieval, questions: Sequence, ks: Sequence[int], passages: int) -> dict:
    """With a reranker: the ranking before it, measured alike, and the paired gain (else nothing)."""
    if retrieval.before_rerank is None:
        return {}
    from rag.bench.reranking import rerank_gain

    return {
        "retrieval_before_rerank": retrieval_summary(retrieval.before_rerank, questions, ks, passages),
        "retrieval_rerank_gain": rerank_gain(retrieval.before_rerank, retrieval, questions),
    }


def retrieval_summary(retrieval, questions: Sequence, ks: Sequence[int], passages: int) -> dict:
    """Mean recall@k, MRR@10, nDCG@10 over the sample; latency from the single-query probe."""
    scores = [retrieval.scores[q.id] for q in questions]
    out: dict = {"questions": len(questions)}
    for key in [*(f"recall@{k}" for k in ks), "mrr@10", "ndcg@10"]:
        out[key] = _mean(s[key] for s in scores)
    with_answers = [q for q in questions if q.answers]
    if with_answers:  # does the retriever hand the answer over at all, before any budget cut?
        out[f"answer_in_top{passages}"] = _mean(
            answer_in_passages(q.answers, [p.text for p in retrieval.chunks[q.id][:passages]]) for q in with_answers
        )
    out["latency_ms"] = _latency(retrieval.latency_ms)
    out["batch_seconds"] = round(retrieval.seconds, 3)
    out["batch_ms_per_question"] = round(1000 * retrieval.seconds / len(questions), 3) if questions else None
    return out


def generator_summary(
    name: str, records: Sequence[dict], session: dict | None, error: str | None, expected: int
) -> dict:
    """Quality, support and cost of one generator over its records."""
    status = "not available" if error else ("ok" if len(records) >= expected else "incomplete")
    entry: dict = {"name": name, "status": status, "error": error, "questions": len(records)}
    if session:
        for key in (
            "family",
            "extractive",
            "fid",
            "runtime",
            "dtype",
            "dtype_reason",
            "parameters",
            "source",
            "revision",
            "context_window",
            "prompt_style",
            "questions_trained",
        ):
            entry[key] = session.get(key)
    if not records:
        return entry
    answered = [r for r in records if not r.get("error")]
    gen_ms = [r["timings"]["generation_ms"] for r in answered if "generation_ms" in r["timings"]]
    out_tokens = sum(r["output_tokens"] for r in answered)
    prompt_tokens = [r["prompt_tokens"] for r in answered]
    entry.update(
        {
            "em": _mean(r["em"] for r in records),
            "f1": _mean(r["f1"] for r in records),
            "answer_in_passages": _mean(r["answer_in_passages"] for r in records),
            "prediction_supported": _mean(r["prediction_supported"] for r in records),
            "empty_rate": _mean(r["empty"] for r in records),
            "budget_errors": len(records) - len(answered),
            "generation_ms": _latency(gen_ms),
            "tokens_per_s": out_tokens / (sum(gen_ms) / 1000) if sum(gen_ms) > 0 else None,
            "prompt_tokens": {
                "mean": _mean(prompt_tokens),
                "p95": percentile(prompt_tokens, 95),
                "max": max(prompt_tokens, default=None),
            },
            "output_tokens_mean": _mean(r["output_tokens"] for r in answered),
            "passages_cut_mean": _mean(r["passages_cut"] for r in records),
            "questions_with_cut": _mean(r["passages_cut"] > 0 for r in records),
        }
    )
    if session:
        entry.update(
            {
                "load_s": session.get("load_s"),
                "peak_rss_mb": session.get("peak_rss_mb"),
                "baseline_rss_mb": session.get("baseline_rss_mb"),
                "memory_method": session.get("memory_method"),
                "memory_questions": session.get("questions"),
            }
        )
    return entry


# --- tables ----------------------------------------------------------------------------------

GENERATOR_COLUMNS = (
    ("generator", "generator"),
    ("family", "family"),
    ("EM", "EM"),
    ("F1", "F1"),
    ("ans in ctx", "answer in passages"),
    ("supported", "prediction supported"),
    ("empty", "empty"),
    ("load s", "load s"),
    ("gen p50 ms", "generation p50 ms"),
    ("gen p95 ms", "generation p95 ms"),
    ("tok/s", "tokens/s"),
    ("prompt tok", "prompt tokens (mean)"),
    ("cut", "passages cut (mean)"),
    ("peak MB", "peak RSS MB"),
)


def family_text(family: str | None, questions_trained: int | None = None) -> str:
    """An answerer's family, and for a model rag trained, how many questions it learnt from."""
    if not family:
        return "-"
    return f"{family} (trained on {questions_trained:,} q)" if questions_trained else family


def generator_rows(summary: dict) -> list[list[str]]:
    rows = []
    for g in summary["generators"]:
        if "em" not in g:  # never ran: the status stands where the family would
            rows.append([g["name"], g["status"], *(["-"] * (len(GENERATOR_COLUMNS) - 2))])
            continue
        rows.append(
            [
                g["name"] + ("" if g["status"] == "ok" else f" ({g['status']})"),
                family_text(g.get("family"), g.get("questions_trained")),
                _f(g["em"]),
                _f(g["f1"]),
                _f(g["answer_in_passages"]),
                _f(g["prediction_supported"]),
                _f(g["empty_rate"]),
                _f(g.get("load_s"), 1),
                _f(g["generation_ms"]["p50"], 0),
                _f(g["generation_ms"]["p95"], 0),
                _f(g["tokens_per_s"], 1),
                _f(g["prompt_tokens"]["mean"], 0),
                _f(g["passages_cut_mean"], 2),
                _f(g.get("peak_rss_mb"), 0),
            ]
        )
    return rows


def retrieval_rows(summary: dict) -> list[list[str]]:
    r = summary["retrieval"]
    rows = [[key, _f(value)] for key, value in r.items() if "@" in key or key.startswith("answer_in_top")]
    lat = r["latency_ms"]
    rows.append([f"latency p50 / p95 (single query, n={lat['n']})", f"{_f(lat['p50'], 1)} / {_f(lat['p95'], 1)} ms"])
    rows.append(["batched search, per question", f"{_f(r['batch_ms_per_question'], 2)} ms"])
    return rows


PAIRED_COLUMNS = (
    "A",
    "B",
    "questions",
    "EM A-B",
    "EM 95% CI",
    "EM verdict",
    "F1 A-B",
    "F1 95% CI",
    "F1 verdict",
    "W/T/L (F1)",
)


def paired_rows(summary: dict) -> list[list[str]]:
    """One row per pair: differences A - B with their intervals and verdicts, and F1 wins/ties/losses of A."""
    rows = []
    for p in summary.get("paired") or []:
        row = [p["a"], p["b"], str(p["questions"])]
        for metric in ("em", "f1"):
            m = p[metric]
            row += [_signed(m["diff"]), f"[{_signed(m['low'])}, {_signed(m['high'])}]", m["verdict"]]
        rows.append([*row, f"{p['wins']}/{p['ties']}/{p['losses']}"])
    return rows


def _paired_text(summary: dict) -> str:
    """What the paired table shows, and on how many questions, in one paragraph."""
    pairs = summary.get("paired") or []
    first = pairs[0]
    text = (
        f"A minus B over the questions both answered, mean and {first['confidence']:.0%} paired bootstrap interval "
        f"({first['resamples']:,} resamples of the questions, seed {first['seed']}); an interval that holds 0 is "
        "no measurable difference. W/T/L: questions where A's F1 is above / equal to / below B's."
    )
    partial = [p for p in pairs if p["only_a"] or p["only_b"]]
    for p in partial:
        text += (
            f" {p['a']} vs {p['b']}: {p['questions']} questions in common "
            f"({p['only_a']} answered by {p['a']} only, {p['only_b']} by {p['b']} only, left out)."
        )
    return text


def _retriever_text(settings: dict) -> str:
    from rag.retrieve import Retriever

    return Retriever.from_dict(settings["retriever"]).describe() if settings.get("retriever") else "dense"


def _rerank_lines(summary: dict) -> list[str]:
    """The reranker's line (before -> after, with intervals) after the retrieval table, if one ran."""
    from rag.bench.reranking import rerank_line

    line = rerank_line(summary)
    return [line + "."] if line else []


def text_table(summary: dict) -> str:
    """The summary as plain-text tables, for the terminal."""
    lines = [_headline(summary), ""]
    lines += _plain(["retrieval", "value"], retrieval_rows(summary))
    lines += _rerank_lines(summary)
    if summary["generators"]:
        lines += ["", *_plain([c for c, _ in GENERATOR_COLUMNS], generator_rows(summary))]
        for g in summary["generators"]:
            if g["error"]:
                lines.append(f"{g['name']}: {g['error']}")
    if summary.get("paired"):
        lines += ["", *_plain(list(PAIRED_COLUMNS), paired_rows(summary)), _paired_text(summary)]
    return "\n".join(lines)


def _headline(summary: dict) -> str:
    d, s, st = summary["dataset"], summary["sample"], summary["settings"]
    mode = {
        "retrieval-only": "retrieval only",
        "oracle": "oracle: gold passages given",
        "retrieved": f"top {st['passages']} retrieved passages given",
    }[st["mode"]]
    sample = f", sample seed {s['seed']}" if s["limit"] and s["questions"] < d["questions"] else ""
    return (
        f"{d['name']} ({d['format']}): {s['questions']} of {d['questions']} questions{sample}; {mode}; "
        f"retriever {_retriever_text(st)}"
    )


DEFINITIONS = """\
- **recall@k**: share of a question's relevant documents among the top k distinct documents
  retrieved (chunks of one document count once, at the rank of the best). **MRR@10**: mean
  reciprocal rank of the first relevant document. **nDCG@10**: graded by the set's judgements
  (BEIR qrels), else every gold document has grade 1.
- **answer_in_topN**: a gold answer occurs in the top N retrieved passages (before any budget cut).
- **EM / F1**: official SQuAD v1.1 normalisation, best over the gold answer and its aliases.
- **answer in passages** (support proxy): a gold answer occurs in the passages the generator
  was actually given, after its context budget cut or dropped some.
- **prediction supported** (faithfulness proxy): the non-empty answer occurs verbatim in those passages.
- **empty**: share of empty answers. **load s**: time to load the model.
  **gen p50/p95**: generation latency per question. **tok/s**: output tokens / generation time.
  **prompt tok**: prompt length in the generator's own tokens. **cut**: passages cut or dropped
  by the budget, per question. **peak MB**: peak resident memory of the process while this
  generator ran (embedder and index included; see `baseline_rss_mb` in summary.json).
"""


def markdown(summary: dict, plots: Sequence[str] = ()) -> str:
    """report.md: headline, retrieval table, generator table, plots, definitions, setup."""
    idx, st = summary["index"], summary["settings"]
    rerank = _rerank_lines(summary)
    lines = [
        f"# rag bench: {summary['dataset']['name']}",
        "",
        _headline(summary) + ".",
        "",
        f"Dataset `{summary['dataset']['path']}`. Index: {idx['documents']} documents, {idx['chunks']} chunks "
        f"of at most {idx['chunk_tokens']} tokens (overlap {idx['overlap']}), embedder `{idx['embedder']}`, "
        f"{idx['index_type']} index; retriever {_retriever_text(st)}. "
        f"Decoding: {st['decoding']}, at most {st['max_new_tokens']} new tokens.",
        "",
        "## Retrieval",
        "",
        *_md_table(["metric", "value"], retrieval_rows(summary)),
        *(["", *rerank] if rerank else []),
    ]
    if summary["generators"]:
        lines += ["", "## Generators", "", *_md_table([h for _, h in GENERATOR_COLUMNS], generator_rows(summary), 2)]
        missing = [g for g in summary["generators"] if g["error"]]
        if missing:
            lines += ["", "Did not run:", *(f"- `{g['name']}` ({g['status']}): {g['error']}" for g in missing)]
    if summary.get("paired"):
        lines += [
            "",
            "## Paired comparisons",
            "",
            _paired_text(summary),
            "",
            *_md_table(list(PAIRED_COLUMNS), paired_rows(summary), 2),
        ]
    for note in summary.get("notes") or []:
        lines += ["", f"Note: {note}."]
    if plots:
        lines += ["", "## Plots", "", *(f"![{name}]({name})" for name in plots)]
    m, v = summary["machine"], summary["versions"]
    lines += [
        "",
        "## Definitions",
        "",
        DEFINITIONS.rstrip(),
        "",
        "## Setup",
        "",
        f"- Machine: {m.get('cpu')}, {m.get('cpus_usable')} usable cores, {m.get('memory_gib')} GiB, "
        f"{m.get('platform')}; torch threads: {m.get('torch_threads', '-')}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        *(
            f"- `{g['name']}`: {g.get('source') or '-'}"
            + (f" @ {g['revision']}" if g.get("revision") else "")
            + (f", {g['parameters']:,} parameters" if g.get("parameters") else "")
            + (f", run by {g['runtime']} in {g['dtype']}" if g.get("runtime") else "")
            for g in summary["generators"]
            if g.get("source")
        ),
        f"- Command: `{summary.get('command') or '-'}`",
        f"- Started {summary['started']}, took {summary['seconds']} s.",
    ]
    return "\n".join(lines) + "\n"
