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

import gc
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rag.bench.datasets import BenchQuestion, BenchSet, load_dataset
from rag.bench.metrics import (
    answer_in_passages,
    dedupe,
    exact_match,
    f1,
    mrr_at_k,
    ndcg_at_k,
    prediction_supported,
    recall_at_k,
)
from rag.bench.results import RESULTS, SESSIONS, JsonlLog
from rag.config import (
    DEFAULT_BEIR_SPLIT, DEFAULT_BENCH_KS, DEFAULT_BENCH_PASSAGES, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS,
    DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLE_SEED, cache_dir,
)
from rag.documents import Passage
from rag.errors import RagError
from rag.retrieve import Retriever

RANKING_DEPTH = 10  # MRR@10 and nDCG@10 need ten distinct documents
LATENCY_PROBE = 50  # single-query searches timed for retrieval latency (metrics use one batch)


@dataclass
class BenchConfig:
    """Everything a run depends on; the CLI fills it from its options."""

    dataset: Path
    generators: list[str] | None = None  # None: one of each family available here
    ks: Sequence[int] = DEFAULT_BENCH_KS
    passages: int = DEFAULT_BENCH_PASSAGES  # retrieved chunks offered to each generator
    limit: int | None = None
    sample_seed: int = DEFAULT_SAMPLE_SEED
    out: Path | None = None  # None: bench-out/<dataset>-<timestamp>
    oracle: bool = False
    retrieval_only: bool = False
    format: str | None = None
    split: str = DEFAULT_BEIR_SPLIT  # BEIR qrels file
    index_cache: Path | None = None  # None: <rag cache>/bench-index/<name>-<key>
    embedder: object = None  # name, Embedder instance, or None for the default
    backend: str | None = None  # embedding backend: torch, onnx (int8) or onnx-fp32; None: the default
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap: int = DEFAULT_CHUNK_OVERLAP
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    extractive: bool = False  # also run every generator in extractive mode, side by side
    fid: bool = False  # also run every generator with Fusion-in-Decoder (encoder-decoder ones run)
    retriever: Retriever = field(default_factory=Retriever)  # dense, bm25 or hybrid (+ MMR)
    progress: bool = False
    command: str | None = None
    load: Callable[[str], object] | None = None  # how to load a generator (tests count calls)
    echo: Callable[[str], None] = lambda message: None  # one-line status messages
    warn: Callable[[str], None] | None = None


@dataclass
class Retrieval:
    """Per question: ranked chunks, distinct ranked doc ids, and its retrieval scores."""

    chunks: dict[str, list[Passage]]
    ranked: dict[str, list[str]]
    scores: dict[str, dict[str, float]]
    seconds: float  # the batched search of all questions
    latency_ms: list[float] = field(default_factory=list)  # single-query probe


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

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    bench = _load_set(config)
    ks = _check_options(config)
    retrieval_only = config.retrieval_only
    notes: list[str] = []
    if not retrieval_only and not any(q.answers for q in bench.questions):
        if config.generators or config.oracle:
            raise RagError(f"{config.dataset} has no answers ({bench.format} set): use --retrieval-only")
        retrieval_only = True
        notes.append(f"{bench.format} set without answers: retrieval only")
    from rag.pipeline import with_modes

    names = [] if retrieval_only else with_modes(config.generators or _default_generators(), config.extractive, config.fid)
    if not retrieval_only and not names:
        raise RagError("no generator is available here: see `rag models`, pass --generators, or use --retrieval-only")

    questions = sample_questions(bench.questions, config.limit, config.sample_seed)
    out = config.out = config.out or default_out(bench.name)  # kept, so a caller can say where to resume
    claim_out(out)
    config.echo(f"bench: {len(questions)} of {len(bench.questions)} questions from {bench.name} ({bench.format}); writing to {out}")
    results, sessions = JsonlLog(out / RESULTS), JsonlLog(out / SESSIONS)
    existing = results.read()

    from rag.embedder import default_backend, is_embedder, load_embedder

    emb = config.embedder if is_embedder(config.embedder) else load_embedder(config.embedder, config.backend or default_backend())
    key = index_key(bench, config, emb.name)
    run_key = _run_key(key, bench, config)
    _check_resumable(existing, run_key, out)  # before any embedding: a wrong --out fails at once
    index, index_info = open_index(bench, config, emb, key)
    config.echo(
        f"index: {index_info['documents']} documents, {index_info['chunks']} chunks "
        f"({'reused' if index_info['reused'] else 'built'} in {index_info['seconds']:.1f}s) at {index_info['path']}"
    )
    depth = max(max(ks), RANKING_DEPTH, config.passages)
    retrieval = retrieve(index, questions, depth, ks, progress=config.progress, retriever=config.retriever)
    done = {(r.get("generator"), r.get("question_id")) for r in existing if r.get("run") == run_key}

    if retrieval_only:
        for q in questions:
            if (None, q.id) not in done:
                results.append(retrieval_record(run_key, q, retrieval))
    attempts: dict[str, str] = {}  # generator -> why it did not run
    texts = document_texts(bench)
    for name in names:  # loaded even when all is stored: only the loaded generator knows its prompt key
        error = run_generator(name, questions, retrieval, texts, config, run_key, results, sessions,
                              done_before=[r for r in existing if r.get("generator") == name and r.get("run") == run_key])
        if error:
            attempts[name] = error
            config.echo(f"{name}: {error}")
    index.close()

    summary = report.build_summary(
        bench=bench, config=config, ks=ks, questions=questions, names=names, retrieval=retrieval,
        records=[r for r in results.read() if r.get("run") == run_key and r.get("generator") is not None],
        sessions=[s for s in sessions.read() if s.get("run") == run_key], errors=attempts,
        index_info=index_info, retrieval_only=retrieval_only, notes=notes, started=started,
        seconds=time.perf_counter() - t0,
    )
    files = report.write_outputs(summary, out)
    return BenchRun(out, summary, [p for p in [out / RESULTS, *files] if p.exists()], attempts, list(names))


def _load_set(config: BenchConfig) -> BenchSet:
    try:
        return load_dataset(config.dataset, config.format, split=config.split)
    except ValueError as e:
        raise RagError(str(e)) from None


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
    return Path("bench-out") / f"{_safe(dataset_name)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


OUT_MARKER = "rag-bench.json"


def claim_out(out: Path) -> None:
    """Make `out` a folder `rag bench` writes to, or prove it is one (it holds rag-bench.json).
    A folder holding anything else is refused untouched: resuming truncates a torn last line of
    results.jsonl and rewrites report.md, which must never happen to a user's own files."""
    from rag.outdir import claim_out as claim

    claim(out, "bench")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def _sha(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


# --- index -----------------------------------------------------------------------------------


def index_key(bench: BenchSet, config: BenchConfig, embedder_name: str) -> str:
    """A hash of what the index holds: the corpus (paths and content hashes), embedder and chunking.
    It keys the results (a changed corpus is never resumed into old answers), not the index folder."""
    if bench.corpus_dir is not None:
        from rag.build import folder_sources
        from rag.errors import LoadError

        source = str(bench.corpus_dir.resolve())
        hashes = []
        for src in folder_sources(bench.corpus_dir):
            try:
                hashes.append((src.path, hashlib.sha256(src.read()).hexdigest()))
            except LoadError as e:
                hashes.append((src.path, f"unreadable: {e}"))
    else:
        source = "<documents>"
        hashes = [(d.path, hashlib.sha256(d.text.encode("utf-8")).hexdigest()) for d in bench.documents]
    return _sha({"source": source, "documents": sorted(hashes), "embedder": embedder_name,
                 "chunk_tokens": config.chunk_tokens, "overlap": config.overlap, "index_type": "flat"})[:16]


def index_folder(bench: BenchSet, config: BenchConfig, embedder_name: str) -> Path:
    """The cached index of a set: one per dataset, embedder and chunking, updated in place when the
    corpus changes (rather than a new folder per content that piles up in the cache)."""
    if config.index_cache is not None:
        return config.index_cache
    where = str(Path(config.dataset).resolve())
    key = _sha({"dataset": where, "embedder": embedder_name, "chunk_tokens": config.chunk_tokens,
                "overlap": config.overlap, **({"backend": config.backend} if config.backend else {})})[:12]
    return cache_dir() / "bench-index" / f"{_safe(bench.name)}-{key}"


def dataset_index(config: BenchConfig) -> tuple[BenchSet, object, dict]:
    """The set, and its corpus index as `rag bench` builds or reuses it (for scripts in benchmarks/)."""
    from rag.embedder import default_backend, is_embedder, load_embedder

    bench = _load_set(config)
    emb = config.embedder if is_embedder(config.embedder) else load_embedder(config.embedder, config.backend or default_backend())
    index, info = open_index(bench, config, emb, index_key(bench, config, emb.name))
    return bench, index, info


def open_index(bench: BenchSet, config: BenchConfig, emb, key: str) -> tuple[object, dict]:
    """Build, update or reuse the set's index (a second run embeds nothing)."""
    from rag.index import Index

    folder = index_folder(bench, config, emb.name)
    options = dict(embedder=emb, chunk_tokens=config.chunk_tokens, overlap=config.overlap, index_type="flat",
                   progress=config.progress, warn=config.warn, notify=config.echo)
    if bench.corpus_dir is not None:
        index = Index.build(bench.corpus_dir, folder, **options)
    else:
        index = Index.build_from_documents(bench.documents, folder, **options)
    report = index.build_report
    info = {
        "path": str(folder), "key": key, "documents": report.documents, "chunks": report.chunks,
        "reused": report.chunks_embedded == 0, "chunks_embedded": report.chunks_embedded,
        "chunks_reused": report.chunks_reused, "seconds": report.seconds, "embedder": emb.name,
        "chunk_tokens": config.chunk_tokens, "overlap": config.overlap, "index_type": index.manifest.index_type,
    }
    return index, info


# --- retrieval -------------------------------------------------------------------------------


def retrieve(
    index, questions: Sequence[BenchQuestion], depth: int, ks: Sequence[int], progress: bool = False,
    retriever: Retriever | None = None,
) -> Retrieval:
    """Search all questions in one batch, deep enough for `depth` distinct documents each.

    A chunked index can return several chunks of one document, and metrics are per document
    (deduplicated), so questions whose chunks cover fewer than `depth` documents are searched
    again deeper. Then a few single-query searches are timed: latency is what `rag ask` pays
    per question, which a batch does not show.
    """
    total = len(index)
    depth = min(depth, index.manifest.counts["documents"])  # never more distinct documents than there are
    texts = [q.question for q in questions]
    k = max(1, min(total, 2 * depth))
    start = time.perf_counter()
    found = index.search_many(texts, k, progress=progress, retriever=retriever) if texts else []
    short = [i for i, chunks in enumerate(found) if len(dedupe(p.doc_path for p in chunks)) < depth]
    while short and k < total:
        k = min(total, k * 4)
        for i, chunks in zip(short, index.search_many([texts[i] for i in short], k, retriever=retriever)):
            found[i] = chunks
        short = [i for i in short if len(dedupe(p.doc_path for p in found[i])) < depth]
    seconds = time.perf_counter() - start

    result = Retrieval({}, {}, {}, seconds)
    for q, chunks in zip(questions, found):
        ranked = dedupe(p.doc_path for p in chunks)[:depth]
        result.chunks[q.id] = chunks
        result.ranked[q.id] = ranked
        result.scores[q.id] = retrieval_scores(ranked, q.gold, ks)
    result.latency_ms = probe_latency(index, texts[:LATENCY_PROBE], min(total, 2 * depth), retriever)
    return result


def retrieval_scores(ranked: Sequence[str], gold: dict[str, int], ks: Sequence[int]) -> dict[str, float]:
    scores = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in ks}
    scores["mrr@10"] = mrr_at_k(ranked, gold, 10)
    scores["ndcg@10"] = ndcg_at_k(ranked, gold, 10)
    return scores


def probe_latency(index, texts: Sequence[str], k: int, retriever: Retriever | None = None) -> list[float]:
    """Milliseconds of single `search` calls (after one warm-up), as a user's question costs."""
    if not texts:
        return []
    index.search(texts[0], k, retriever=retriever)
    times = []
    for text in texts:
        start = time.perf_counter()
        index.search(text, k, retriever=retriever)
        times.append((time.perf_counter() - start) * 1000)
    return times


def retrieval_record(run_key: str, q: BenchQuestion, retrieval: Retrieval) -> dict:
    """A results.jsonl line of a retrieval-only run (generator null)."""
    return {
        "run": run_key, "generator": None, "question_id": q.id, "question": q.question,
        "gold_ids": sorted(q.gold), "retrieved_ids": retrieval.ranked[q.id], "retrieval": _rounded(retrieval.scores[q.id]),
    }


# --- generation ------------------------------------------------------------------------------


def run_generator(
    name: str,
    questions: Sequence[BenchQuestion],
    retrieval: Retrieval,
    texts: Callable[[str], str],
    config: BenchConfig,
    run_key: str,
    results: JsonlLog,
    sessions: JsonlLog,
    done_before: Sequence[dict] = (),
) -> str | None:
    """Load `name` once and answer those of `questions` without a stored answer (in `done_before`)
    made with its prompt key, appending each record; the reason if it cannot load.

    `name` is a label: "smollm2+extractive" loads smollm2 and answers in extractive mode.
    """
    from rag.bench.system import PeakMemory, model_info
    from rag.generators import BudgetError, ModelNotAvailable, clear_loaded, load_generator
    from rag.generators.base import fid_refusal
    from rag.pipeline import GenerationSettings, answer_from, settings_for

    label = name

    load = config.load or load_generator
    memory = PeakMemory()
    clear_loaded()  # a model loaded earlier in this process would make the load time 0
    gc.collect()
    memory.reset()
    baseline = memory.current_mb()
    name, settings = settings_for(label, GenerationSettings(
        max_new_tokens=config.max_new_tokens, temperature=0.0, seed=config.sample_seed))
    started = time.perf_counter()
    try:
        generator = load(name)
    except ModelNotAvailable as e:
        return str(e)
    load_s = time.perf_counter() - started
    refusal = fid_refusal(name, getattr(generator, "family", None)) if settings.fid else None
    if refusal is not None:
        return str(refusal)
    from rag.bench.resume import prompt_key, reusable

    key = prompt_key(generator, settings)  # answers made with another prompt or settings are answered again
    kept = reusable(done_before, key)
    answered = {r["question_id"] for r in kept}
    stale = {r["question_id"] for r in done_before} - answered
    pending = [q for q in questions if q.id not in answered]
    if any(q.id in stale for q in pending):
        config.echo(f"{label}: {sum(q.id in stale for q in pending)} stored answers were made with another prompt "
                    "or generation settings: answering them again")
    if not pending:
        config.echo(f"{label}: all {len(questions)} questions already in {results.path}")
    running = _Running(kept)
    for q in _progress(pending, label, config.progress, running):
        offered = oracle_passages(q, texts, config.passages) if config.oracle else retrieval.chunks[q.id][: config.passages]
        try:
            answer, error = answer_from(generator, q.question, offered, settings), None
        except BudgetError as e:
            answer, error = None, str(e)
        record = answer_record(run_key, label, q, retrieval, offered, answer, error, config.oracle)
        record["prompt_key"] = key
        results.append(record)
        running.add(record)
    sessions.append({
        "run": run_key, "generator": label, "extractive": settings.extractive, "fid": settings.fid, "questions": len(pending), "load_s": round(load_s, 3),
        "peak_rss_mb": round(memory.peak_mb(), 1), "baseline_rss_mb": None if baseline is None else round(baseline, 1),
        "memory_method": memory.method, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prompt_key": key, **model_info(generator),
    })
    del generator
    clear_loaded()  # free it before the next generator, so each peak is its own
    gc.collect()
    return None


def oracle_passages(q: BenchQuestion, texts: Callable[[str], str], n: int) -> list[Passage]:
    """The gold documents (best grade first, at most n), each whole as one passage; the
    generator's budget cuts what does not fit, as it would a retrieved passage."""
    gold = sorted(q.gold.items(), key=lambda item: (-item[1], item[0]))[:n]
    passages = []
    for rank, (doc, _) in enumerate(gold, start=1):
        text = texts(doc)
        passages.append(Passage(-rank, doc, text, 0, len(text), 1, text.count("\n") + 1, 1.0, rank))
    return passages


def document_texts(bench: BenchSet) -> Callable[[str], str]:
    """Doc id -> text: the set's documents, else the file in its corpus folder (PDF, HTML...)."""
    known = {d.path: d.text for d in bench.documents}

    def text(doc: str) -> str:
        if doc not in known and bench.corpus_dir is not None:
            from rag.loaders import load_text

            known[doc] = load_text(bench.corpus_dir / doc)
        return known.get(doc, "")

    return text


def answer_record(
    run_key: str, name: str, q: BenchQuestion, retrieval: Retrieval, offered: Sequence[Passage],
    answer, error: str | None, oracle: bool,
) -> dict:
    """One results.jsonl line: what the generator was offered and given, its answer and scores."""
    given = answer.passages if answer is not None else []
    given_texts = [p.text for p in given]
    text = answer.text if answer is not None else ""
    timings = dict(answer.timings) if answer is not None else {}
    return {
        "run": run_key,
        "generator": name,
        "question_id": q.id,
        "question": q.question,
        "answers": q.answers,
        "gold_ids": sorted(q.gold),
        "retrieved_ids": retrieval.ranked[q.id],
        "oracle": oracle,
        "offered_ids": [p.doc_path for p in offered],
        "given": [p.citation for p in given],
        "answer": text,
        "extractive": bool(answer is not None and answer.extractive),
        "fid": bool(answer is not None and answer.fid),
        "source": answer.source if answer is not None else None,  # extractive: the passage holding the span
        "span": asdict(answer.span) if answer is not None and answer.span is not None else None,
        "found": answer.found if answer is not None else None,  # a reader: False when it said "not in the documents"
        "passages": given_passages(answer),  # for report.html: the texts as given, and what the budget did
        "em": exact_match(text, q.answers),
        "f1": round(f1(text, q.answers), 6),
        "answer_in_passages": answer_in_passages(q.answers, given_texts),
        "prediction_supported": prediction_supported(text, given_texts),
        "empty": not text.strip(),
        "prompt_tokens": answer.prompt_tokens if answer is not None else 0,
        "output_tokens": answer.output_tokens if answer is not None else 0,
        "passages_cut": answer.passages_cut if answer is not None else 0,
        "timings": _rounded(timings),
        "retrieval": _rounded(retrieval.scores[q.id]),
        "error": error,
    }


def given_passages(answer) -> list[dict]:
    """Each passage an answer was given, as cut: its citation, its text, and what the context
    budget did to it (whole or cut; dropped ones were not given)."""
    if answer is None:
        return []
    status = {item.rank: item.status for item in answer.budget}
    return [{"citation": p.citation, "text": p.text, "status": status.get(p.rank)} for p in answer.passages]


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


class _Running:
    """Running EM/F1 of one generator (resumed records included) for the progress bar."""

    def __init__(self, records: Sequence[dict]) -> None:
        self.n, self.em, self.f1 = 0, 0.0, 0.0
        for r in records:
            self.add(r)

    def add(self, record: dict) -> None:
        self.n += 1
        self.em += record.get("em", 0.0)
        self.f1 += record.get("f1", 0.0)

    def postfix(self) -> dict[str, str]:
        n = max(self.n, 1)
        return {"EM": f"{self.em / n:.3f}", "F1": f"{self.f1 / n:.3f}"}


def _progress(items: Sequence[BenchQuestion], name: str, enabled: bool, running: _Running):
    """Yield items, with a tqdm bar showing running EM/F1 when enabled (a terminal)."""
    if not enabled:
        yield from items
        return
    from tqdm.auto import tqdm

    label = name if len(name) <= 24 else "…" + name[-23:]
    with tqdm(total=len(items), desc=label, unit="q", file=sys.stderr, dynamic_ncols=True) as bar:
        for item in items:
            yield item
            bar.update(1)
            bar.set_postfix(running.postfix(), refresh=False)


# --- resuming --------------------------------------------------------------------------------


def _run_key(index_key: str, bench: BenchSet, config: BenchConfig) -> str:
    """What makes stored answers reusable: the corpus/index, the questions and the generation settings.
    The prompt, known only once a generator loads, is keyed per answer (`resume.prompt_key`)."""
    questions = _sha([[q.id, q.question, q.answers, sorted(q.gold.items())] for q in bench.questions])
    key = {"index": index_key, "questions": questions, "oracle": config.oracle, "passages": config.passages,
           "max_new_tokens": config.max_new_tokens, "temperature": 0.0}
    if config.retriever != Retriever() and not config.oracle:  # the default keeps keys of runs made before retrievers
        key["retriever"] = config.retriever.to_dict()
    return _sha(key)[:12]


def _check_resumable(existing: Sequence[dict], run_key: str, out: Path) -> None:
    other = next((r for r in existing if r.get("generator") is not None and r.get("run") != run_key), None)
    if other is not None:
        raise RagError(
            f"{out / RESULTS} holds answers from another setup (dataset, corpus, embedder, chunking, retriever, "
            "--oracle, --passages or --max-new-tokens differ): choose another --out"
        )
