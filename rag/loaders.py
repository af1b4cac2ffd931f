"""Turn files into text: one loader per file type, and a folder walker.

Every loader returns plain text whose line numbers are what citations point at.
For Markdown, reStructuredText and plain text that is the file itself; for HTML
and PDF it is the extracted visible text.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from .errors import LoadError
from .store import MARKER as INDEX_MARKER  # a folder holding it is a rag index: never indexed itself

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES




def walk(folder: Path, skip: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Supported files under `folder`, sorted, skipping hidden folders/files, rag index folders
    and `skip` paths."""
    for relative, _ in walk_relative(folder, skip):
        yield folder / relative


def walk_relative(folder: Path, skip: tuple[Path, ...] = ()) -> Iterator[tuple[str, os.DirEntry]]:
    """(POSIX path relative to `folder`, directory entry) of each file `walk` yields, in sorted
    order: plain strings and scandir entries, because a folder of 50,000 files should cost its
    stat calls, not 50,000 Path objects."""
    skip_resolved = {str(p.resolve()) for p in skip}

    def visit(directory: str, prefix: str) -> Iterator[tuple[str, os.DirEntry]]:
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if os.path.realpath(entry.path) in skip_resolved or os.path.exists(os.path.join(entry.path, INDEX_MARKER)):
                    continue
                yield from visit(entry.path, prefix + name + "/")
            elif name[name.rfind("."):].lower() in SUPPORTED_SUFFIXES and "." in name:
                yield prefix + name, entry

    yield from visit(os.fspath(folder), "")


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
    """`bytes -> text` for files ending in `suffix` (for a caller that has read the bytes already)."""
    suffix = suffix.lower()
    return _DECODERS.setdefault(suffix, lambda data: text_of(data, suffix))


_DECODERS: dict = {}


def text_of(data: bytes, suffix: str) -> str:
    """The text of a file's bytes, by its suffix; raises LoadError saying why there is none."""
    if not data.strip():
        raise LoadError("empty file")
    if suffix in PDF_SUFFIXES:
        text = _pdf_text(data)
    elif suffix in HTML_SUFFIXES:
        text = html_to_text(decode_bytes(data))
    else:
        text = decode_bytes(data)
    if not text.strip():
        raise LoadError("no text in it" + (" (a scanned PDF without a text layer?)" if suffix in PDF_SUFFIXES else ""))
    return text


def decode_bytes(data: bytes) -> str:
    """UTF-8 when it is valid UTF-8, otherwise the encoding charset-normalizer detects."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return _normalise_newlines(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise LoadError("cannot detect its text encoding (binary or corrupt?)")
    # Short texts often fit several legacy code pages equally well; the commonest one wins the tie.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    best = next((m for m in tied if m.encoding in _COMMON_LEGACY), best)
    return _normalise_newlines(str(best))


_COMMON_LEGACY = ("cp1252", "latin_1", "iso8859_15")


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _pdf_text(data: bytes) -> str:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns loudly on slightly broken files
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise LoadError("encrypted PDF") from None
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        raise LoadError(f"corrupt PDF ({type(e).__name__})") from None
    # Pages are separated by a blank line so the chunker sees a paragraph boundary.
    return _normalise_newlines("\n\n".join(p.strip("\n") for p in pages))


_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "td", "th", "tr", "ul", "title",
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
