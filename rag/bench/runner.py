"""`rag bench`: retrieve once for a sample of questions, let each generator answer from the same
passages, score everything, and log each answer as it lands so an interrupted run resumes.

Flow: load the set -> index its corpus (cached by content, embedder and chunking, so a second run
embeds nothing) -> batched retrieval for every sampled question (metrics) plus a few single
queries (latency) -> per generator: load once, answer the questions not yet in results.jsonl,
record load time and peak memory -> summary.json, report.md, plots (see `report.py`).

Decoding is greedy, the sample is drawn with a fixed seed and the index is exact (flat), so the
same inputs give the same numbers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rag.bench.answering import document_texts, run_generator
from rag.bench.config import RANKING_DEPTH, BenchConfig
from rag.bench.corpus import bench_embedder, index_key, load_set, open_index, safe_name
from rag.bench.datasets import BenchQuestion
from rag.bench.reranking import load_bench_reranker, run_key_part
from rag.bench.results import RESULTS, SESSIONS, JsonlLog
from rag.bench.resume import check_resumable, run_key_of
from rag.bench.retrieval import retrieval_record, retrieve
from rag.errors import RagError

__all__ = ["BenchConfig", "BenchRun", "run_bench", "sample_questions", "default_out", "claim_out"]


@dataclass
class BenchRun:
    """What a run wrote: its folder, the summary (as in summary.json), and the files."""

    out: Path
    summary: dict
    files: list[Path]  # only those that exist
    errors: dict[str, str] = field(default_factory=dict)  # answerer -> why it did not run
    answerers: list[str] = field(default_factory=list)  # those asked for

    @property
    def nothing_answered(self) -> bool:
        """Answerers were asked for and none of them ran."""
        return bool(self.answerers) and set(self.answerers) <= set(self.errors)


# --- entry point ---------------------------------------------------------------------------


def run_bench(config: BenchConfig) -> BenchRun:
    """Run (or resume) a benchmark and write its results, summary, report and plots."""
    from rag.bench import report
    from rag.bench.outputs import write_outputs

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    if config.ray is not None:
        from rag.cluster import require_ray

        require_ray()  # one line naming the extra, before anything is touched
    bench = load_set(config)
    ks = _check_options(config)
    retrieval_only = config.retrieval_only
    notes: list[str] = []
    if not retrieval_only and not any(q.answers for q in bench.questions):
        if config.generators or config.oracle:
            raise RagError(f"{config.dataset} has no answers ({bench.format} set): use --retrieval-only")
        retrieval_only = True
        notes.append(f"{bench.format} set without answers: retrieval only")
    from rag.pipeline import with_modes

    names = (
        [] if retrieval_only else with_modes(config.generators or _default_generators(), config.extractive, config.fid)
    )
    if not retrieval_only and not names:
        raise RagError("no generator is available here: see `rag models`, pass --generators, or use --retrieval-only")

    questions = sample_questions(bench.questions, config.limit, config.sample_seed)
    reranker = load_bench_reranker(config.retriever)  # before --out is made: one that cannot load leaves none
    out = config.out = config.out or default_out(bench.name)  # kept, so a caller can say where to resume
    claim_out(out)
    config.echo(
        f"bench: {len(questions)} of {len(bench.questions)} questions from {bench.name} ({bench.format}); writing to {out}"
    )
    results, sessions = JsonlLog(out / RESULTS, config.warn), JsonlLog(out / SESSIONS, config.warn)
    existing = results.read()

    emb = bench_embedder(config)
    key = index_key(bench, config, emb.name)
    run_key = run_key_of(key, bench, config, reranker=run_key_part(reranker) if reranker is not None else None)
    check_resumable(existing, run_key, out)  # before any embedding: a wrong --out fails at once
    index, index_info = open_index(bench, config, emb, key)
    config.echo(
        f"index: {index_info['documents']} documents, {index_info['chunks']} chunks "
        f"({'reused' if index_info['reused'] else 'built'} in {index_info['seconds']:.1f}s) at {index_info['path']}"
    )
    depth = max(max(ks), RANKING_DEPTH, config.passages)
    retrieval = retrieve(
        index, questions, depth, ks, progress=config.progress, retriever=config.retriever, reranker=reranker
    )
    done = {(r.get("generator"), r.get("question_id")) for r in existing if r.get("run") == run_key}

    if retrieval_only:
        for q in questions:
            if (None, q.id) not in done:
                results.append(retrieval_record(run_key, q, retrieval))
    attempts: dict[str, str] = {}  # generator -> why it did not run
    texts = document_texts(bench)
    for name in names:  # loaded even when all is stored: only the loaded generator knows its prompt key
        error = run_generator(
            name,
            questions,
            retrieval,
            texts,
            config,
            run_key,
            results,
            sessions,
            done_before=[r for r in existing if r.get("generator") == name and r.get("run") == run_key],
        )
        if error:
            attempts[name] = error
            config.echo(f"{name}: {error}")
    index.close()

    summary = report.build_summary(
        bench=bench,
        config=config,
        ks=ks,
        questions=questions,
        names=names,
        retrieval=retrieval,
        records=[r for r in results.read() if r.get("run") == run_key and r.get("generator") is not None],
        sessions=[s for s in sessions.read() if s.get("run") == run_key],
        errors=attempts,
        index_info=index_info,
        retrieval_only=retrieval_only,
        notes=notes,
        started=started,
        seconds=time.perf_counter() - t0,
    )
    files = write_outputs(summary, out)
    return BenchRun(out, summary, [p for p in [out / RESULTS, *files] if p.exists()], attempts, list(names))


def _check_options(config: BenchConfig) -> list[int]:
    ks = sorted(set(int(k) for k in config.ks))
    if not ks or ks[0] < 1:
        raise RagError(f"-k takes cut-offs of at least 1, got {','.join(map(str, config.ks)) or 'none'}")
    if config.passages < 1:
        raise RagError(f"--passages must be at least 1, got {config.passages}")
    if config.limit is not None and config.limit < 1:
        raise RagError(f"--limit must be at least 1, got {config.limit}")
    if config.oracle and config.retrieval_only:
        raise RagError("--oracle gives gold passages to generators; it cannot go with --retrieval-only")
    return ks


def _default_generators() -> list[str]:
    from rag.pipeline import default_comparison

    return default_comparison()


def sample_questions(questions: Sequence[BenchQuestion], limit: int | None, seed: int) -> list[BenchQuestion]:
    """A fixed random sample of `limit` questions, in the set's order.

    The sample is a prefix of one seeded shuffle, so a larger --limit with the same seed holds
    every question of a smaller one (a run can be extended by resuming with a larger limit).
    """
    if limit is None or limit >= len(questions):
        return list(questions)
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    return [questions[i] for i in sorted(order[:limit])]


def default_out(dataset_name: str) -> Path:
    """bench-out/<dataset>-<YYYYmmdd-HHMMSS> in the current folder."""
    return Path("bench-out") / f"{safe_name(dataset_name)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


OUT_MARKER = "rag-bench.json"


def claim_out(out: Path) -> None:
    """Make `out` a folder `rag bench` writes to, or prove it is one (it holds rag-bench.json).
    A folder holding anything else is refused untouched: resuming truncates a torn last line of
    results.jsonl and rewrites report.md, which must never happen to a user's own files."""
    from rag.outdir import claim_out as claim

    claim(out, "bench")
