"""Seals for the small JSON records rag keeps beside what it trains: a checksum of the record's
own content, so damage that still parses (a digit changed in a margin or a step) is found instead
of read silently as a different value. Records without a seal (older ones, a user's) are read as
they are; the checks of their fields still apply."""

from __future__ import annotations

import hashlib
import json

SEAL = "sha256"


def _digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != SEAL}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def seal(record: dict) -> dict:
    """The record with its seal (a checksum of every other field)."""
    return {**record, SEAL: _digest(record)}


def seal_ok(record: dict) -> bool:
    """Whether the record's seal matches its content (True where it has none)."""
    if SEAL not in record:
        return True
    return record[SEAL] == _digest(record)
