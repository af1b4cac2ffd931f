"""A model folder's rag record (rag-reader.json, rag-reranker.json, rag-generator.json): read whole and checked, or
refused in one line.

The record says how rag reads the model (the no-answer margin, window lengths). A record that
cannot be parsed, lacks a field rag needs or holds one of the wrong type must not load silently
with defaults: a reader would then run with margin -inf and never decline. A folder without a
record (a Hub model) is another matter: it loads with the documented defaults.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rag.answers import ModelNotAvailable
from rag.integrity import seal_ok

# field -> (accepted types, whether None is allowed, a check of the value)
_INT = (int,)
_FIELDS = {
    "rag-reader": {
        "margin": ((int, float), True, lambda v: math.isfinite(v)),
        "max_length": (_INT, False, lambda v: 16 <= v <= 8192),
        "stride": (_INT, False, lambda v: v >= 0),
        "max_answer_tokens": (_INT, False, lambda v: v >= 1),
    },
    "rag-reranker": {
        "max_length": (_INT, False, lambda v: 16 <= v <= 8192),
    },
    "rag-generator": {
        "family": ((str,), False, lambda v: v in ("encoder-decoder", "decoder-only")),
        "attention": ((str,), False, lambda v: v in ("", "prefix", "causal")),
        "window": (_INT, False, lambda v: 16 <= v <= 8192),
        "max_new_tokens": (_INT, False, lambda v: v >= 1),
    },
}


def read_record(folder: Path, marker: str, role: str) -> dict:
    """The folder's record checked field by field; {} where the folder has none. `ModelNotAvailable`
    (one line naming the file and what repairs it) where it is damaged."""
    path = folder / marker
    kind = marker.removesuffix(".json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise _damaged(path, role, getattr(e, "strerror", None) or type(e).__name__) from None
    try:
        record = json.loads(text)
    except ValueError as e:
        raise _damaged(path, role, f"not JSON ({str(e)[:60]})") from None
    if not isinstance(record, dict) or record.get("format") != kind:
        raise _damaged(path, role, f'not a {kind} record (no "format": "{kind}")')
    if not seal_ok(record):
        raise _damaged(path, role, "its content differs from its checksum")
    for name, (types, nullable, valid) in _FIELDS[kind].items():
        if name not in record:
            raise _damaged(path, role, f"{name} is missing")
        value = record[name]
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, types) or not valid(value):
            raise _damaged(path, role, f"{name} is {json.dumps(value)[:40]}, not a valid value")
    return record


def _damaged(path: Path, role: str, why: str) -> ModelNotAvailable:
    return ModelNotAvailable(
        f"{path} is damaged: {why}; the {role} is not loaded with guessed settings: "
        f"reinstall rag (for a shipped {role}) or run `rag train {role}` again"
    )
