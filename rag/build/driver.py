"""The build, start to end: open the ledger, resolve the settings, plan, embed, write; and the
one retry a damaged meta.sqlite earns (a second pass from the documents alone)."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import store
from ..embedders import default_backend, is_embedder, load_embedder
from ..errors import NothingToIndex, RagError
from . import embed, plan, write
from .ledger import Ledger
from .report import BuildReport
from .settings import BuildOptions, backend_notice, resolve
from .sources import Source, folder_sources


def build(sources: Callable[[], Iterable[Source]], index_dir: Path, source: str, options: BuildOptions) -> BuildReport:
    """Index the documents `sources()` yields into `index_dir` (created, or updated
    incrementally; see `rag.build`). `sources` is called again if a damaged meta.sqlite
    forces a second pass from scratch."""
    started = time.perf_counter()
    if options.ray is not None:
        from ..cluster import require_ray

        require_ray()  # one line naming the extra, before anything is touched
    path = store.resolve(index_dir)
    created = not path.exists()
    store.claim(path)
    warn = options.warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    unbuilt: NothingToIndex | None = None
    with store.write_lock(path):
        ledger = Ledger(path, warn)
        try:
            report = run(ledger, sources(), source, options)
        except sqlite3.DatabaseError as e:
            ledger.close()
            if store.is_disk_full(e):
                raise ledger.disk_full() from None
            if not store.is_corrupt(e) or ledger.fresh:
                raise
            # A meta.sqlite that turns out damaged mid-way: start again from the documents alone.
            warn(f"{path / store.META} is damaged ({e}): rebuilding the index from {source}")
            ledger = Ledger(path, warn)
            report = run(ledger, sources(), source, BuildOptions(**{**options.__dict__, "rebuild": True}), wipe=True)
        except OSError as e:
            ledger.close()
            if store.is_disk_full(e):
                raise ledger.disk_full() from None
            raise
        except NothingToIndex as e:
            ledger.close()
            if not ledger.fresh:
                raise
            unbuilt = e
        finally:
            ledger.close()
    if unbuilt is not None:  # a first build with nothing to index leaves no half-made index (lock released)
        remove_unbuilt(path, created)
        raise unbuilt
    report.seconds = time.perf_counter() - started
    return report


def run(
    ledger: Ledger, sources: Iterable[Source], source: str, options: BuildOptions, wipe: bool = False
) -> BuildReport:
    """One write to one index, under its lock (see the stages in `rag.build`)."""
    warn = ledger.warn
    notify = options.notify or (lambda message: print(message, file=sys.stderr))
    report = BuildReport()
    ledger.open(source, wipe)
    report.notes += ledger.notes
    recorded, has_generation = ledger.recorded(), ledger.prev is not None
    settings = resolve(
        options,
        recorded,
        index=ledger.path,
        source=source,
        has_generation=has_generation,
        default_backend=default_backend(),
    )
    emb = (
        options.embedder
        if is_embedder(options.embedder)
        else load_embedder(settings.embedder, settings.backend, batch_size=options.batch_size, notify=notify)
    )
    settings.backend = getattr(emb, "backend", None) or settings.backend  # torch, where an ONNX cache was unusable
    if notice := backend_notice(settings, recorded, has_generation):
        notify(notice)
    ledger.choose_vector_table(settings.embedder, recorded.get("embedder"), settings.rebuild, notify)
    for notice in settings.notices:
        notify(notice)
    planner = runner = None
    if options.ray is not None:  # the same stages on workers; this process stays the one writer
        from . import on_ray

        here = plan.local_planner(settings, emb.tokenizer, options.progress, warn)
        planner = on_ray.planner(options.ray, settings, settings.embedder, settings.backend, here)
        runner = on_ray.embed_runner(options.ray, settings.embedder, settings.backend, options.batch_size)
    changes = plan.plan(sources, ledger, settings, emb.tokenizer, report, source, options.progress, warn, planner)
    embed.embed_pending(
        ledger,
        emb,
        settings,
        lambda: ledger.dimension(emb.name, emb.dimension),
        report,
        options.progress,
        warn,
        runner,
    )
    write.write(ledger, settings, emb, changes, source, report, warn)
    return report


def build_folder(folder: Path, index_dir: Path, options: BuildOptions) -> BuildReport:
    """Index (or update the index of) the documents under `folder`."""
    if str(folder).strip() == "" or not Path(folder).exists():
        raise RagError(f"folder {folder} does not exist: give the folder of documents to index")
    if not Path(folder).is_dir():
        raise RagError(f"{folder} is a file, not a folder: give the folder of documents to index")
    folder = Path(folder)
    skip = (Path(index_dir),)  # the index being written, if it lies inside the folder: passed over silently
    return build(
        lambda: folder_sources(folder, skip, follow_symlinks=options.follow_symlinks, max_file_mb=options.max_file_mb),
        index_dir,
        str(folder.resolve()),
        options,
    )


def remove_unbuilt(index_dir: Path, created: bool) -> None:
    """Remove what a first build made before it found nothing to index: rag's own files (marker,
    meta.sqlite, lock), only where the folder holds no generation, and the folder if this build
    created it and nothing else is in it."""
    if store.gen_dirs(index_dir) or not store.is_ours(index_dir):
        return
    for name in (store.META, store.META + "-journal", store.LOCK, store.MARKER):
        (index_dir / name).unlink(missing_ok=True)
    if created:
        try:
            index_dir.rmdir()  # only if empty: anything else there stays
        except OSError:
            pass
