"""transformers' own output while rag loads a model: its warnings (the MISSING/UNEXPECTED load
table) and, unless asked for, its progress bars are silenced; rag says what matters in one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_transformers(progress: bool = False) -> Iterator[None]:
    """Silence transformers' warnings and progress bars while loading (the CLI prints its own)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
