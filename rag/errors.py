"""Errors a user can act on. The CLI prints `str(error)` as one line and exits non-zero."""


class RagError(Exception):
    """Base class: the message names the file or value at fault and what to do."""


class LoadError(RagError):
    """A file could not be turned into text (binary, undecodable, corrupt, empty, unreadable)."""


class IndexError_(RagError):
    """A missing, incompatible or damaged index."""


class IndexLocked(RagError):
    """Another process is writing the same index."""


class EmbedderNotAvailable(RagError):
    """The embedding model is neither local nor downloadable."""
