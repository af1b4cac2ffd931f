"""Turn files into text: one loader per file type, and a folder walker.

Every loader returns plain text whose line numbers are what citations point at.
For Markdown, reStructuredText and plain text that is the file itself; for HTML
and PDF it is the extracted visible text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

from .encodings import decode_bytes, decode_stream
from .errors import LoadError
from .store import MARKER as INDEX_MARKER  # a folder whose marker parses is a rag index: never indexed itself
from .store import is_ours as is_index_folder

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = set(TEXT_SUFFIXES) | HTML_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Found:
    """A file to index (`entry` set), or a path the walk could not or would not enter (`problem`
    set; `folder` when it is a folder, whose documents already indexed are then kept)."""

    path: str  # POSIX, relative to the folder walked
    entry: os.DirEntry | None = None
    problem: str | None = None
    folder: bool = False


def walk(folder: Path, skip: tuple[Path, ...] = (), follow_symlinks: bool = False) -> Iterator[Path]:
    """Supported files under `folder`, sorted, skipping hidden folders/files, rag index folders,
    `skip` paths, what cannot be read and (unless `follow_symlinks`) symbolic links."""
    for found in walk_relative(folder, skip, follow_symlinks):
        if found.entry is not None:
            yield folder / found.path


def walk_relative(folder: Path, skip: tuple[Path, ...] = (), follow_symlinks: bool = False) -> Iterator[Found]:
    """What `walk` finds, in sorted order, as plain strings and scandir entries (a folder of
    50,000 files should cost its stat calls, not 50,000 Path objects), with the folders it could
    not read or would not enter (a rag index: its marker parses; a symbolic link not followed).
    Symbolic links, to files or folders, are followed only with `follow_symlinks`, and then a
    folder already visited (a loop) is not visited again. The walk keeps its own stack, so a
    folder nested thousands of levels deep costs memory, not Python's recursion limit."""
    skip_resolved = {str(p.resolve()) for p in skip}
    visited: set[tuple[int, int]] = set()
    # Each stack entry is an iterator over one folder's remaining findings, deepest last.
    start = os.fspath(folder)
    stack: list[Iterator[tuple[str, str, str] | Found]] = [iter([(start, "", os.path.realpath(start))])]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, Found):
            yield item
        else:
            stack.append(_entries(*item, visited, skip_resolved, follow_symlinks))


def _entries(
    directory: str, prefix: str, real: str, visited: set, skip_resolved: set[str], follow_symlinks: bool
) -> Iterator[tuple[str, str, str] | Found]:
    """One folder's findings in sorted order: files and problems as `Found`, subfolders to
    enter as (path, prefix, real path). `real` is the folder's resolved path, carried down rather
    than resolved again per subfolder: `realpath` walks every component, so a folder nested
    thousands of levels deep cost time growing with the cube of its depth."""
    try:
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in visited:
            yield Found(prefix.rstrip("/"), problem="a folder already visited (a symbolic link loop)", folder=True)
            return
        visited.add((info.st_dev, info.st_ino))
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as e:
        reason = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
        yield Found(prefix.rstrip("/") or ".", problem=f"cannot read this folder ({reason})", folder=True)
        return
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
        except OSError:
            is_dir, link = False, False
        if link and not follow_symlinks:
            if entry.is_dir() or _supported(name):  # links to unsupported files are not worth a line
                yield Found(
                    prefix + name,
                    problem="a symbolic link (rag index --follow-symlinks follows links)",
                    folder=entry.is_dir(),
                )
            continue
        if is_dir:
            sub_real = os.path.realpath(entry.path) if link else os.path.join(real, name)
            if sub_real in skip_resolved:
                continue
            if os.path.exists(os.path.join(entry.path, INDEX_MARKER)) and is_index_folder(Path(entry.path)):
                yield Found(
                    prefix + name,
                    problem=f"a rag index (its {INDEX_MARKER} marker): not indexed as documents",
                    folder=True,
                )
                continue
            yield (entry.path, prefix + name + "/", sub_real)
        elif _supported(name):
            yield Found(prefix + name, entry)


def _supported(name: str) -> bool:
    return "." in name and name[name.rfind(".") :].lower() in SUPPORTED_SUFFIXES


def load_text(path: Path) -> str:
    """The text of a supported file; raises LoadError saying why it cannot be read."""
    try:
        data = path.read_bytes()
    except PermissionError:
        raise LoadError("permission denied") from None
    except OSError as e:
        raise LoadError(e.strerror or str(e)) from None
    return text_of(data, path.suffix.lower())


def decoder(suffix: str):
    """`(bytes, warn) -> text` for files ending in `suffix` (for a caller that has read the bytes)."""
    suffix = suffix.lower()
    return _DECODERS.setdefault(suffix, lambda data, warn=None: text_of(data, suffix, warn))


_DECODERS: dict = {}


def text_of(data: bytes, suffix: str, warn: Callable[[str], None] | None = None) -> str:
    """The text of a file's bytes, by its suffix; raises LoadError saying why there is none.
    `warn` hears about text that was read with losses (bad UTF-8 bytes replaced)."""
    if not data.strip():
        raise LoadError("empty file")
    if suffix in PDF_SUFFIXES:
        text = _pdf_text(data)
    elif suffix in HTML_SUFFIXES:
        text = html_to_text(decode_bytes(data, warn))
    else:
        text = decode_bytes(data, warn)
    if not text.strip():
        raise LoadError("no text in it" + (" (a scanned PDF without a text layer?)" if suffix in PDF_SUFFIXES else ""))
    return text


def stream_text(open_file: Callable[[], BinaryIO], warn: Callable[[str], None] | None = None) -> Iterator[str]:
    """The text of a plain-text file, a piece at a time (see `encodings.decode_stream`)."""
    with open_file() as f:
        yield from decode_stream(iter(lambda: f.read(1 << 20), b""), warn)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _pdf_text(data: bytes) -> str:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns loudly on slightly broken files
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many "protected" PDFs open with an empty password
            raise LoadError("encrypted (password required)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted (password required)") from None
    except DependencyError as e:
        raise LoadError(f"needs a package to decrypt it ({e})") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        raise LoadError(f"corrupt PDF ({type(e).__name__})") from None
    # Pages are separated by a blank line so the chunker sees a paragraph boundary.
    return _normalise_newlines("\n\n".join(p.strip("\n") for p in pages))


_BLOCK_TAGS = {
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
    "title",
}
_INVISIBLE_TAGS = {"script", "style", "noscript", "template", "svg", "head"}


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks, scripts and styles vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _INVISIBLE_TAGS:
            self.hidden += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _INVISIBLE_TAGS and self.hidden:
            self.hidden -= 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title or not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: one line per block, blank lines between paragraphs."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    raw = "".join(parser.parts)
    lines = [re.sub(r"[ \t\f\v\u00a0]+", " ", line).strip() for line in raw.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
