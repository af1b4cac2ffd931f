"""Errors a user can act on. The CLI prints `str(error)` as one line and exits non-zero."""


class RagError(Exception):
    """Base class: the message names the file or value at fault and what to do."""


class LoadError(RagError):
    """A file could not be turned into text (binary, undecodable, corrupt, empty, unreadable)."""


class IndexError_(RagError):
    """A missing, incompatible or damaged index."""


class IndexPermission(IndexError_):
    """A file of the index this user may not read or write: not damage, never repaired by rebuilding."""


class IndexLocked(RagError):
    """Another process is writing the same index."""


class EmbedderNotAvailable(RagError):
    """The embedding model is neither local nor downloadable."""


def require_utf8(text: str, what: str) -> str:
    """`text` as given, or a RagError when it holds bytes that were not UTF-8 (Python keeps such
    command-line bytes as lone surrogates, which no tokenizer accepts)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"character U+{ord(bad):04X}"
        raise RagError(
            f"the {what} is not valid UTF-8 ({byte} at character {e.start + 1}): pass it as UTF-8 "
            "(check the terminal's encoding or the shell's locale, e.g. LANG=C.UTF-8)"
        ) from None
    return text


class NothingToIndex(RagError):
    """The folder holds no document rag can index (a first build leaves no index behind)."""
