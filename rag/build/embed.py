"""Stage 2, embed: vectors (and BM25 tokens) for the pending chunks whose text has none yet.

`embed_batch` is the per-batch work (texts in, vectors and tokens out: plain data a worker can
return); `embed_pending` drives it and has the ledger commit the results as checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .. import lexical, progress, store
from .ledger import Ledger
from .settings import Settings

EMBED_BATCH = 512  # chunks embedded and committed together at most: the granularity of resuming
EMBED_SLICE = 256  # chunks given to the embedder at once (length-sorted, so batches pad little): ~3 s here
CHECKPOINT_SECONDS = 5.0  # embedded vectors are committed at least this often: a short build killed keeps its work


@dataclass
class Embedded:
    """One batch's results: per text, its float32 vector bytes and its BM25 tokens."""

    shas: list[str]
    vectors: list[bytes]
    tokens: list[list[str]]


def embed_batch(embedder, shas: list[str], texts: list[str]) -> Embedded:
    """Embed and tokenise one batch of chunk texts."""
    return Embedded(
        shas, [store.vector_blob(v) for v in embedder.encode(texts)], [lexical.tokenize(text) for text in texts]
    )


Work = Iterable[tuple[list[str], list[str]]]  # (shas, texts) slices, shortest texts first
Runner = Callable[[Work], Iterator[Embedded]]  # embeds the slices, in order: here, or on workers


def local(embedder) -> Runner:
    """Embed the slices in this process, one after the other."""
    return lambda work: (embed_batch(embedder, shas, texts) for shas, texts in work)


def embed_pending(
    ledger: Ledger,
    embedder,
    settings: Settings,
    dimension: Callable[[], int],
    report,
    show: bool,
    warn: Callable[[str], None],
    runner: Runner | None = None,
) -> None:
    """Embed the pending chunks whose text has no vector yet (shortest first, so batches pad
    little), committing every EMBED_BATCH chunks or CHECKPOINT_SECONDS (with their BM25 term
    ids, so no chunk is ever tokenised again). A rebuild reuses a stored vector only when its
    checksum holds. `runner` embeds the slices (default: here, with `embedder`); whoever embeds
    them, only this process writes."""
    missing = ledger.unembedded()
    if settings.rebuild:
        missing += ledger.damaged_vectors(dimension())
    report.chunks_embedded = len(missing)
    report.chunks_reused = ledger.pending - len(missing)
    if not missing:
        return
    if settings.chunk_tokens + 2 > embedder.max_tokens:
        warn(
            f"chunks of {settings.chunk_tokens} tokens exceed the embedder's {embedder.max_tokens}-token input: "
            "the rest is truncated"
        )
    bar = progress.bar(len(missing), "Embedding", show, "chunk")
    step = max(1, min(EMBED_SLICE, EMBED_BATCH))
    work = ((missing[i : i + step], ledger.texts(missing[i : i + step])) for i in range(0, len(missing), step))
    done = Embedded([], [], [])
    last = time.monotonic()
    for batch in (runner or local(embedder))(work):
        done.shas += batch.shas
        done.vectors += batch.vectors
        done.tokens += batch.tokens
        if len(done.shas) >= EMBED_BATCH or time.monotonic() - last >= CHECKPOINT_SECONDS:
            ledger.store_vectors(done.shas, done.vectors, done.tokens)
            done, last = Embedded([], [], []), time.monotonic()
        if bar is not None:
            bar.update(len(batch.shas))
    if done.shas:  # the last, partial checkpoint
        ledger.store_vectors(done.shas, done.vectors, done.tokens)
    if bar is not None:
        bar.close()
