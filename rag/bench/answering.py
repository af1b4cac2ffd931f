"""The bench's answering: one answerer loaded once, the questions it has not answered yet,
one results.jsonl record per answer as it lands (so an interrupted run resumes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from rag import progress
from rag.bench.answerer import Answerer
from rag.bench.config import BenchConfig, Retrieval
from rag.bench.datasets import BenchQuestion, BenchSet
from rag.bench.metrics import answer_in_passages, exact_match, f1, prediction_supported
from rag.bench.results import JsonlLog
from rag.bench.retrieval import before_rerank_fields, rounded
from rag.documents import Passage


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
    """Load `name` once (here, or once per actor with `config.ray`) and answer those of
    `questions` without a stored answer (in `done_before`) made with its prompt key, appending
    each record here; the reason if it cannot load.

    `name` is a label: "smollm2+extractive" loads smollm2 and answers in extractive mode.
    """
    from rag.answerers import load_answerer
    from rag.answers import ModelNotAvailable
    from rag.bench.resume import reusable
    from rag.generators.base import fid_refusal
    from rag.pipeline import GenerationSettings, settings_for

    label = name
    name, settings = settings_for(
        label, GenerationSettings(max_new_tokens=config.max_new_tokens, temperature=0.0, seed=config.sample_seed)
    )
    try:
        if config.ray is not None:
            from rag.bench.on_ray import RayAnswerer

            answerer = RayAnswerer(config.ray, name, settings)
        else:
            answerer = Answerer(config.load or load_answerer, name, settings)
    except ModelNotAvailable as e:
        return str(e)
    try:
        refusal = fid_refusal(name, answerer.family) if settings.fid else None
        if refusal is not None:
            return str(refusal)
        key = answerer.key
        kept = reusable(done_before, key)
        answered = {r["question_id"] for r in kept}
        stale = {r["question_id"] for r in done_before} - answered
        pending = [q for q in questions if q.id not in answered]
        if any(q.id in stale for q in pending):
            config.echo(
                f"{label}: {sum(q.id in stale for q in pending)} stored answers were made with another prompt "
                "or generation settings: answering them again"
            )
        if not pending:
            config.echo(f"{label}: all {len(questions)} questions already in {results.path}")
        offered = {
            q.id: oracle_passages(q, texts, config.passages)
            if config.oracle
            else retrieval.chunks[q.id][: config.passages]
            for q in pending
        }
        running = _Running(kept)
        answers = answerer.answer_all((q.question, offered[q.id]) for q in pending)
        for q, (answer, error) in _progress(zip(pending, answers), len(pending), label, config.progress, running):
            record = answer_record(run_key, label, q, retrieval, offered[q.id], answer, error, config.oracle)
            record["prompt_key"] = key
            results.append(record)
            running.add(record)
        sessions.append(
            {
                "run": run_key,
                "generator": label,
                "extractive": settings.extractive,
                "fid": settings.fid,
                "questions": len(pending),
                "load_s": round(answerer.load_s, 3),
                **answerer.measured(),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "prompt_key": key,
                **answerer.info,
            }
        )
    finally:
        answerer.close()
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
    run_key: str,
    name: str,
    q: BenchQuestion,
    retrieval: Retrieval,
    offered: Sequence[Passage],
    answer,
    error: str | None,
    oracle: bool,
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
        "timings": rounded(timings),
        "retrieval": rounded(retrieval.scores[q.id]),
        **before_rerank_fields(q, retrieval),
        "error": error,
    }


def given_passages(answer) -> list[dict]:
    """Each passage an answer was given, as cut: its citation, its text, and what the context
    budget did to it (whole or cut; dropped ones were not given)."""
    if answer is None:
        return []
    status = {item.rank: item.status for item in answer.budget}
    return [{"citation": p.citation, "text": p.text, "status": status.get(p.rank)} for p in answer.passages]


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


def _progress(pairs: Iterable, total: int, name: str, enabled: bool, running: _Running):
    """Yield (question, result) pairs as they land, with a bar showing running EM/F1 when
    enabled (a terminal); `running` is updated by the caller after each."""
    bar = progress.bar(total, progress.label(name), enabled, "q")
    if bar is None:
        yield from pairs
        return
    with bar:
        for pair in pairs:
            yield pair
            bar.update(1)
            bar.set_postfix(running.postfix(), refresh=False)
