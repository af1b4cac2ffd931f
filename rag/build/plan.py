"""Stage 1, plan: which documents changed, and the chunks of those that did.

`plan_one` is pure (a source and what the index recorded for it in, a `FilePlan` out), so it
can run anywhere; `plan` drives it over the sources and hands the chunks to the ledger."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .. import progress
from ..chunking import chunk_stream
from ..documents import Chunk
from ..errors import LoadError, NothingToIndex
from ..loaders import SUPPORTED_SUFFIXES, TEXT_SUFFIXES, stream_text
from .ledger import Ledger
from .settings import Settings
from .sources import Source, problem

STREAM_BYTES = 8_000_000  # text files larger than this are hashed, decoded and chunked a block at a time
RACY_NS = 2_000_000_000  # a file modified this close to when it was hashed is hashed again


@dataclass
class FilePlan:
    """What one file comes to: `changed` (with its chunks), `same` (hashed: the content is as
    recorded) or `skipped` (with the reason)."""

    path: str
    status: str
    digest: str = ""
    size: int = 0
    mtime_ns: int = 0
    seen_ns: int = 0
    chunks: Iterable[Chunk] = ()  # a list; lazy for a large file streamed a block at a time (local builds)
    reason: str = ""
    warnings: list[str] = field(default_factory=list)  # said while planning on a worker, for the driver to say


@dataclass
class Changes:
    """What the plan found, for the write and the commit."""

    old_documents: int = 0
    replaced: list[str] = field(default_factory=list)  # documents whose live chunks this update retires
    doc_rows: list[tuple] = field(default_factory=list)  # documents rows to write at the commit
    touched: list[tuple] = field(default_factory=list)  # (mtime_ns, size, seen_ns, path) of unchanged files re-hashed


def unchanged_by_stat(src: Source, old: tuple | None, settings: Settings) -> bool:
    """A file whose size and mtime are as recorded (and not racily close to its hashing) is
    unchanged without being read, unless the settings ask for every file to be read."""
    return (
        old is not None
        and not settings.rechunk
        and not settings.rehash
        and old[1] == src.size
        and old[2] == src.mtime_ns
        and 0 < src.mtime_ns < old[3] - RACY_NS
    )


def is_streamed(src: Source) -> bool:
    """A large text file: hashed, decoded and chunked a block at a time (memory stays flat)."""
    return src.streamable and src.size > STREAM_BYTES and src.path.lower().endswith(TEXT_SUFFIXES)


def plan_one(
    src: Source,
    old: tuple | None,
    settings: Settings,
    tokenizer,
    show: bool = False,
    warn: Callable[[str], None] | None = None,
    seen_ns: int | None = None,
) -> FilePlan:
    """Hash one new or possibly changed file; if it did change, chunk it. A large text file is
    read, decoded and chunked a block at a time (memory stays flat); its chunks come lazily.
    `seen_ns` is when it is hashed (now, unless given): a later edit within RACY_NS is re-read."""
    now = time.time_ns() if seen_ns is None else seen_ns
    streamed = is_streamed(src)
    try:
        if streamed:
            digest = _file_digest(src, show)
        else:
            data = src.read()
            digest = hashlib.sha256(data).hexdigest()
        if old is not None and old[0] == digest and not settings.rechunk:
            return FilePlan(src.path, "same", digest, src.size, src.mtime_ns, now)
        pieces = stream_text(src.open, warn) if streamed else [src.decode(data, warn)]
        data = None
        chunks = chunk_stream(pieces, src.path, tokenizer, settings.chunk_tokens, settings.overlap)
        chunks = _bar_over(chunks, src, show) if streamed else list(chunks)
    except Exception as e:  # no file's loader may stop the run: it is skipped with its reason
        return FilePlan(src.path, "skipped", reason=skip_reason(e))
    return FilePlan(src.path, "changed", digest, src.size, src.mtime_ns, now, chunks)


def skip_reason(error: Exception) -> str:
    return str(error) if isinstance(error, LoadError) else f"could not be read ({type(error).__name__}: {error})"


Planner = Callable[[Iterable[tuple[Source, "tuple | None"]]], Iterator[tuple[Source, "tuple | None", FilePlan]]]


def local_planner(settings: Settings, tokenizer, show: bool, warn: Callable[[str], None]) -> Planner:
    """Plans each (source, old) pair here, as it comes (a large file's chunks stay lazy)."""

    def run(pairs):
        for src, old in pairs:
            yield src, old, plan_one(src, old, settings, tokenizer, show, lambda m, p=src.path: warn(f"{p}: {m}"))

    return run


def plan(
    sources: Iterable[Source],
    ledger: Ledger,
    settings: Settings,
    tokenizer,
    report,
    source: str,
    show: bool,
    warn: Callable[[str], None],
    planner: Planner | None = None,
) -> Changes:
    """Plan every source, inserting the chunks of changed files as pending rows (invisible to
    readers); documents no source names any more are retired. `planner` plans the files that
    may have changed (default: here, one after the other); only this process records."""
    old_docs = ledger.documents()
    changes = Changes(old_documents=len(old_docs))
    seen: set[str] = set()

    def candidates() -> Iterator[tuple[Source, tuple | None]]:
        for src in progress.over(sources, "Reading", show, "file"):
            if src.folder:  # could not be read, or is a link not followed: what was indexed under it stays
                prefix = "" if src.path == "." else src.path + "/"
                kept = [] if settings.rebuild else [p for p in old_docs if p.startswith(prefix)]
                seen.update(kept)
                reason = problem(src)
                report.skipped.append((src.path + "/", reason))
                warn(
                    f"skipped folder {src.path}/: {reason}"
                    + (f" (kept its {len(kept)} previously indexed documents)" if kept else "")
                )
                continue
            seen.add(src.path)
            old = old_docs.get(src.path)
            if unchanged_by_stat(src, old, settings):
                report.unchanged += 1
                continue
            yield src, old

    ledger.begin()
    for _src, old, fp in (planner or local_planner(settings, tokenizer, show, warn))(candidates()):
        for message in fp.warnings:
            warn(f"{fp.path}: {message}")
        _record(fp, old, ledger, settings, changes, report, warn)
    ledger.commit_plan()
    gone = sorted(set(old_docs) - seen)
    changes.replaced += gone
    report.removed = len(gone)
    if not seen and not old_docs:
        raise NothingToIndex(f"no supported documents in {source}: rag reads {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    if ledger.pending == 0 and not old_docs and report.skipped and len(report.skipped) == len(seen):
        raise NothingToIndex(f"none of the {len(seen)} supported files in {source} could be read (see the warnings)")
    return changes


def _record(
    fp: FilePlan,
    old: tuple | None,
    ledger: Ledger,
    settings: Settings,
    changes: Changes,
    report,
    warn: Callable[[str], None],
) -> None:
    """Hand one file's plan to the ledger and count it."""
    count = 0
    if fp.status == "changed":
        try:
            count = ledger.insert_chunks(fp.chunks)
        except sqlite3.Error:
            raise  # the index's own storage failing is not this file's fault
        except Exception as e:  # a streamed file failing part-way
            ledger.drop_pending(fp.path)
            fp = FilePlan(fp.path, "skipped", reason=skip_reason(e))
    if fp.status == "same":
        report.unchanged += 1
        changes.touched.append((fp.mtime_ns, fp.size, fp.seen_ns, fp.path))
        return
    if fp.status == "skipped":
        report.skipped.append((fp.path, fp.reason))
        if old is not None and settings.rebuild:  # a rebuild holds only what it could read
            changes.replaced.append(fp.path)
        kept = " (kept its previously indexed version)" if old is not None and not settings.rebuild else ""
        warn(f"skipped {fp.path}: {fp.reason}{kept}")
        return
    if old is not None:
        changes.replaced.append(fp.path)
    if not count:
        report.skipped.append((fp.path, "no text in it"))
        warn(f"skipped {fp.path}: no text in it")
        return
    changes.doc_rows.append((fp.path, fp.digest, fp.size, fp.mtime_ns, fp.seen_ns, count))
    report.changed += old is not None
    report.added += old is None


def _file_digest(source: Source, show: bool) -> str:
    """The sha256 of a large file, read a block at a time."""
    digest = hashlib.sha256()
    bar = progress.bar(source.size, f"Hashing {source.path[-30:]}", show, "B")
    with source.open() as f:
        while block := f.read(1 << 20):
            digest.update(block)
            if bar is not None:
                bar.update(len(block))
    if bar is not None:
        bar.close()
    return digest.hexdigest()


def _bar_over(chunks: Iterable, source: Source, show: bool) -> Iterator:
    """Yield the chunks of a large file, moving a bar by how far into the text they reach."""
    bar = progress.bar(source.size, f"Chunking {source.path[-30:]}", show, "B")
    if bar is None:
        yield from chunks
        return
    for chunk in chunks:
        yield chunk
        bar.update(max(0, min(source.size, chunk.end) - bar.n))  # characters for bytes: close enough for a bar
    bar.update(source.size - bar.n)
    bar.close()
