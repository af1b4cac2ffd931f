"""What a build reads: one `Source` per document, a plain dataclass (it pickles, so a worker on
another machine can read the file where it lives), made from a folder walk or from in-memory
documents."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..config import DEFAULT_MAX_FILE_MB
from ..documents import Document
from ..errors import LoadError
from ..loaders import decoder, walk_relative


@dataclass
class Source:
    """One document to index: its id (relative path), size and mtime, and where its bytes are:
    a file (`file`), bytes in memory (`data`), or nowhere (`problem` says why: reading it
    raises LoadError, so it is skipped with its reason)."""

    path: str
    size: int
    mtime_ns: int
    file: str | None = None  # the absolute path to read
    data: bytes | None = None  # in-memory documents (benchmark corpora): UTF-8 text
    problem: str | None = None
    folder: bool = False  # a folder that could not be read: the documents indexed under it are kept

    def read(self) -> bytes:
        """The raw bytes (raises LoadError)."""
        if self.problem is not None:
            raise LoadError(self.problem)
        if self.data is not None:
            return self.data
        return read_file(self.file)

    def decode(self, data: bytes, warn: Callable[[str], None] | None = None) -> str:
        """The text of these bytes (raises LoadError): by the file's suffix, or UTF-8 in memory."""
        if self.file is None:
            return data.decode("utf-8")
        return decoder(self.path[self.path.rfind(".") :])(data, warn)

    @property
    def streamable(self) -> bool:
        """Whether the file can be read a block at a time (`open`)."""
        return self.file is not None and self.problem is None

    def open(self) -> BinaryIO:
        return open(self.file, "rb")


def folder_sources(
    folder: Path,
    skip: Iterable[Path] = (),
    follow_symlinks: bool = False,
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB,
) -> Iterable[Source]:
    """Sources for the supported files under `folder` (never inside a rag index folder). What
    cannot be used still yields, failing when read, so it is skipped with its reason: a file that
    cannot be stat'ed, is not a regular file (a FIFO, a device) or is larger than `max_file_mb`,
    a symbolic link not followed; a folder that cannot be read yields a `folder` source."""
    limit = None if max_file_mb is None else int(max_file_mb * 1e6)
    for found in walk_relative(folder, tuple(skip), follow_symlinks):
        rel = shell_name(found.path)
        if found.problem is not None:
            yield Source(rel, -1, -1, problem=found.problem, folder=found.folder)
            continue
        try:
            info = found.entry.stat()
        except OSError as e:
            yield Source(rel, -1, -1, problem=os_reason(e))
            continue
        if not stat.S_ISREG(info.st_mode):
            yield Source(rel, -1, -1, problem="not a regular file (a FIFO, socket or device)")
        elif limit is not None and info.st_size > limit:
            yield Source(
                rel,
                -1,
                -1,
                problem=f"{info.st_size / 1e6:.0f} MB, larger than --max-file-mb "
                f"{max_file_mb:g}: raise it to index this file",
            )
        else:
            yield Source(rel, info.st_size, info.st_mtime_ns, file=found.entry.path)


def shell_name(path: str) -> str:
    """A relative path as rag stores it: as it is when it is Unicode text (control characters are
    escaped where they are shown, and JSON keeps the real name); a name whose bytes are not UTF-8
    (it reaches Python as lone surrogates, which SQLite and the terminal refuse) is quoted as bash
    quotes it ($'caf\\xe9.txt'), so it is indexed and cited in a form a user can paste into a
    shell, the same on every update."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    out = []
    for char in os.fsencode(path).decode("utf-8", "surrogateescape"):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in "\\'":
            out.append("\\" + char)
        elif not char.isprintable():
            out.append("".join(f"\\x{b:02x}" for b in char.encode("utf-8")))
        else:
            out.append(char)
    return "$'" + "".join(out) + "'"


def document_sources(documents: Iterable[Document]) -> Iterable[Source]:
    """Sources for in-memory documents (benchmark corpora): the id is `Document.path`."""
    for doc in documents:
        data = doc.text.encode("utf-8")
        yield Source(doc.path, len(data), 0, data=data)


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise LoadError(os_reason(e)) from None


def os_reason(error: OSError) -> str:
    return "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))


def problem(source: Source) -> str:
    """Why a source cannot be read."""
    try:
        source.read()
    except LoadError as e:
        return str(e)
    return "skipped"
