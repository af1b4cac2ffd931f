"""Which stored answers a resumed `rag bench` may reuse, beyond the run key.

The run key (`run_key_of`) covers what is known before any model loads: data, index, retrieval,
--passages, --max-new-tokens. How a generator lays out its prompt is only known once it is
loaded (a chat template comes with the tokenizer), so each answer also carries a prompt key,
and a generator's stored answers whose key differs from the freshly loaded generator's are
answered again rather than mixed with new ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.bench.corpus import sha
from rag.bench.results import RESULTS
from rag.errors import RagError
from rag.retrieve import Retriever

if TYPE_CHECKING:
    from rag.bench.config import BenchConfig
    from rag.bench.datasets import BenchSet

PROBE_QUESTION, PROBE_PASSAGES = "Q", ["P"]  # a fixed dummy question: its rendering shows the template


def prompt_key(generator: object, settings: object) -> str:
    """A short hash of everything that shapes a generator's answer besides the model and the passages:
    its prompt style (name, the template rendered on a dummy question, tokenisation and stop rule),
    its context window (which decides the budget cut), the generation settings, and the dtype
    its weights compute in when that is not float32.

    The seed is left out at temperature 0: greedy decoding does not use it, and the bench's seed
    (the sample's) must not invalidate answers when a run is extended with another sample.
    """
    style = getattr(generator, "prompt_style", None)
    values = asdict(settings) if is_dataclass(settings) else dict(vars(settings))
    if not values.get("temperature"):
        values.pop("seed", None)
    key = {
        "style": getattr(style, "name", None),
        "template": style.render(PROBE_QUESTION, PROBE_PASSAGES) if style is not None else None,
        "add_special_tokens": getattr(style, "add_special_tokens", None),
        "stop_at_newline": getattr(style, "stop_at_newline", None),
        "context_window": getattr(generator, "context_window", None),
        "settings": values,
    }
    if getattr(generator, "weights_key", None):  # a reader: retrained weights answer again
        key["weights"] = generator.weights_key
    dtype = getattr(generator, "dtype", None)
    if dtype and dtype != "float32":  # answers computed in bfloat16 are not float32's (whose keys stay as they were)
        key["dtype"] = str(dtype)
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def reusable(records: Iterable[Mapping], key: str) -> list[Mapping]:
    """The stored records made with prompt key `key` (records written before keys existed have none)."""
    return [r for r in records if r.get("prompt_key") == key]


def current_keys(records: Iterable[Mapping], sessions: Iterable[Mapping] = ()) -> dict:
    """generator -> the prompt key its answers must have to count in the report.

    The key of the generator's latest load (generators.jsonl), since a load whose stored answers
    all had its key appends no answer; for logs from before sessions had keys, its latest answer's.
    """
    keys = {r.get("generator"): r.get("prompt_key") for r in records}
    keys.update({s.get("generator"): s["prompt_key"] for s in sessions if "prompt_key" in s})
    return keys


def current_records(
    records: Iterable[Mapping], sessions: Iterable[Mapping] = (), keys: Mapping | None = None
) -> list[Mapping]:
    """The records made with their generator's current prompt key (`keys`, else `current_keys`),
    one per (generator, question): the last. Older keys are answers superseded by a changed prompt."""
    records = list(records)
    keys = current_keys(records, sessions) if keys is None else keys
    kept = {
        (r.get("generator"), r.get("question_id")): r
        for r in records
        if r.get("prompt_key") == keys[r.get("generator")]
    }
    return list(kept.values())


def measured_session(sessions: Iterable[Mapping], generator: str, key: str | None) -> Mapping | None:
    """The session whose load time and memory the report shows: the latest that answered questions
    with the current key, else the latest that answered any, else the latest (a load that answered
    nothing measured no generation)."""
    own = [s for s in sessions if s.get("generator") == generator]
    for wanted in (
        lambda s: s.get("questions") and s.get("prompt_key", key) == key,
        lambda s: s.get("questions"),
        bool,
    ):
        chosen = [s for s in own if wanted(s)]
        if chosen:
            return chosen[-1]
    return None


def run_key_of(index_key: str, bench: BenchSet, config: BenchConfig, reranker: Mapping | None = None) -> str:
    """What makes stored answers reusable: the corpus/index, the questions and the generation settings.
    The prompt, known only once a generator loads, is keyed per answer (`resume.prompt_key`).
    `reranker`: what ran the retriever's reranker (`bench.reranking.run_key_part`), so passages
    ranked by other weights, runtime or dtype are not resumed."""
    questions = sha([[q.id, q.question, q.answers, sorted(q.gold.items())] for q in bench.questions])
    key = {
        "index": index_key,
        "questions": questions,
        "oracle": config.oracle,
        "passages": config.passages,
        "max_new_tokens": config.max_new_tokens,
        "temperature": 0.0,
    }
    # Runs made before retrievers were chosen were dense, and their keys have no retriever: dense keeps
    # that key (not "the default", which is hybrid now: its runs must not resume dense answers).
    if config.retriever != Retriever(kind="dense") and not config.oracle:
        key["retriever"] = config.retriever.to_dict()
        if config.retriever.rerank is not None and reranker is not None:
            key["reranker"] = dict(reranker)
    return sha(key)[:12]


def check_resumable(existing: Sequence[dict], run_key: str, out: Path) -> None:
    """Refuse an --out whose stored answers were made with another setup (never mixed in)."""
    other = next((r for r in existing if r.get("generator") is not None and r.get("run") != run_key), None)
    if other is not None:
        raise RagError(
            f"{out / RESULTS} holds answers from another setup (dataset, corpus, embedder, chunking, retriever, "
            "--oracle, --passages or --max-new-tokens differ): choose another --out"
        )
