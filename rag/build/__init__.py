"""Build or update an index: plan what changed, embed only what must be, commit one generation.

The stages are modules: `sources` (what to read), `settings` (options against the index's
record, pure), `plan` (per file, pure), `embed` (per batch), `write` (the segment files), and
`ledger`, the one writer, which owns every SQL statement; `driver` runs them in order.
Stage inputs and outputs are plain dataclasses, so the pure stages can run on workers.

1. plan: a file whose size and modification time are as recorded is unchanged without being
   read (`rehash` reads every file). Others are hashed; new and changed ones are loaded and
   chunked, and their chunks go into meta.sqlite as pending rows, invisible to readers.
2. embed: each pending chunk whose text has no vector in this index yet is embedded. Vectors
   are kept by chunk text, so a moved file, or the unchanged paragraphs of an edited one, cost
   nothing. Vectors are committed every EMBED_BATCH chunks or CHECKPOINT_SECONDS, whichever
   comes first: a build killed after seconds resumes with what it embedded.
3. write: the next generation's FAISS and BM25 files are made from the previous generation's
   (removing the chunks of changed and deleted files, adding the pending ones) and fsynced;
   then one SQLite transaction makes the pending rows live, retires the replaced ones and
   records the generation with its manifest. That commit is the switch; generations older than
   the previous one are deleted after it.

`--rebuild` is an update like any other: every document is read and chunked again and the
search files are written from scratch, but in the same meta.sqlite, as a new generation that
readers see only once it commits; stored vectors whose checksums hold are reused. With another
embedder the new vectors go into a table of their own (`next_vectors`, a checkpoint a killed
rebuild resumes from) that replaces `vectors` in the commit. Before an update, the current
generation's files are checked against their recorded checksums; damaged ones are written
again from the stored vectors and text (nothing is embedded).
"""

from __future__ import annotations

from ..config import DEFAULT_MAX_FILE_MB
from .driver import build, build_folder
from .report import BuildReport
from .settings import BuildOptions
from .sources import Source, document_sources, folder_sources

__all__ = [
    "DEFAULT_MAX_FILE_MB",
    "BuildOptions",
    "BuildReport",
    "Source",
    "build",
    "build_folder",
    "document_sources",
    "folder_sources",
]
