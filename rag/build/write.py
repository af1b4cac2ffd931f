"""Stage 3, write: the next generation's FAISS and BM25 files, made from the previous
generation's (see `rag.segments`), fsynced, then committed by the ledger in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import lexical, store
from ..errors import IndexError_
from ..generation_marker import gen_marker_ok, restore_gen_marker
from ..manifest import Manifest
from ..segments import SegmentWriter
from .ledger import Ledger, now
from .plan import Changes
from .settings import Settings


def write(
    ledger: Ledger, settings: Settings, embedder, changes: Changes, source: str, report, warn: Callable[[str], None]
) -> None:
    """Write and commit the next generation, or (nothing changed) finish the current one."""
    prev, path = ledger.prev, ledger.path
    dimension = ledger.dimension(embedder.name, embedder.dimension)
    removed = ledger.live_ids_of(changes.replaced)
    new_ids = ledger.pending_ids()
    prev_ok = prev is not None and not settings.rebuild and files_intact(path, prev, warn)
    bm25_ok = prev_ok and lexical.compatible(prev.bm25)
    same_type = prev is not None and prev.index_type == settings.index_type
    if prev is not None and not len(new_ids) and not len(removed) and bm25_ok and same_type and not settings.rechunk:
        ledger.finish(prev.generation, changes.touched)  # nothing changed: no new generation
        report.documents, report.chunks = prev.counts["documents"], prev.counts["chunks"]
        report.generation = prev.generation
        return
    if prev is not None and prev_ok and not bm25_ok:
        report.notes.append("BM25 index rebuilt with the current tokeniser and parameters")
    gen = (prev.generation if prev else 0) + 1
    folder = ledger.new_gen_dir = store.new_gen_dir(path, gen)
    total = (prev.counts["chunks"] if prev else 0) - len(removed) + len(new_ids)

    writer = SegmentWriter(path, folder, settings.index_type, ledger.stored(dimension), warn)
    counts = None
    if prev_ok and bm25_ok and same_type:
        counts, base_gen = writer.delta_update(prev, removed, len(new_ids)), prev.base_generation
    if counts is None:
        counts, base_gen = writer.merge(prev if prev_ok and bm25_ok and same_type else None, removed, total), gen
    store.fsync_tree(folder)
    store.fsync_dir(path)
    if counts["base"] - counts["deleted"] + counts["delta"] != total:
        raise IndexError_(
            f"index {path}: the new generation would hold {counts['base'] - counts['deleted'] + counts['delta']} "
            f"chunks, not {total}: run `rag index FOLDER --rebuild` (nothing was changed)"
        )

    documents = changes.old_documents - len(changes.replaced) + len(changes.doc_rows)
    stamp = now()
    before = prev.id_sum if prev is not None else 0
    manifest = Manifest(
        generation=gen,
        embedder=embedder.name,
        backend=settings.backend,
        dimension=dimension,
        index_type=settings.index_type,
        index_params=writer.params,
        chunking={"tokens": settings.chunk_tokens, "overlap": settings.overlap, "tokenizer": embedder.name},
        bm25=lexical.settings(),
        source=source,
        counts={"documents": documents, "chunks": total, "terms": ledger.vocabulary_size(), **counts},
        files=writer.files,
        id_sum=(before + store.id_sum(new_ids) - store.id_sum(removed)) % (1 << 63),
        created=prev.created if prev else stamp,
        updated=stamp,
        base_generation=base_gen,
    )
    ledger.commit(gen, removed, manifest, changes.replaced, changes.doc_rows, changes.touched)
    report.documents, report.chunks, report.generation = documents, total, gen
    ledger.finish(gen)


def files_intact(path: Path, prev: Manifest, warn: Callable[[str], None]) -> bool:
    """Whether every file of the current generation is there with its recorded size and
    checksum (damage that keeps a file's size included): an update links or reads them."""
    folder = store.gen_dir(path, prev.generation)
    for name, info in sorted(prev.files.items()):
        try:
            if (folder / name).stat().st_size != info.get("size"):
                raise OSError("its size differs from the one recorded")
            if store.file_sha256(folder / name) != info.get("sha256"):
                raise OSError("its checksum differs from the one recorded")
        except PermissionError:
            # not damage: rebuilding around a file this user may not read would hide the problem
            store.check_access(folder / name)
            raise store.IndexPermission(
                f"permission denied: this user may not read {folder / name}: run as the user who built "
                "the index or ask them to grant access; the index itself is not damaged"
            ) from None
        except OSError as e:
            why = e.strerror or str(e)
            warn(
                f"{folder / name} is missing or damaged ({why}): the index's FAISS and BM25 files are "
                "written again from the stored vectors (nothing is embedded again)"
            )
            return False
    if not gen_marker_ok(folder, prev.generation):
        if restore_gen_marker(folder, prev.generation, prev.files):
            warn(
                f"{folder / store.GEN_MARKER} was missing or damaged: written again (every file of "
                f"{folder.name} checks out against {store.META})"
            )
        else:
            warn(
                f"{folder / store.GEN_MARKER} is missing or damaged and {folder.name} holds files rag did not "
                "write: it is left as it is (and not removed when it is superseded)"
            )
    return True
