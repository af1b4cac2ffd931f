"""Append-only JSONL logs in a benchmark's --out folder, which are what makes a run resumable.

`results.jsonl` holds one line per (generator, question); `generators.jsonl` one line per time a
generator was loaded (load time, peak memory, model versions). Each line is written and flushed
as soon as it is known, so a killed run loses at most the line it was writing; reading drops
such a torn last line, and the next run with the same --out skips every pair already there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from rag.integrity import SEAL, seal, seal_ok

RESULTS = "results.jsonl"
SESSIONS = "generators.jsonl"


class JsonlLog:
    """One JSON object per line, each sealed with a checksum of its content (`rag.integrity`).
    `read` tolerates a torn last line; a damaged line (not JSON, or content that differs from its
    seal) is set aside in `<name>.damaged`, never deleted, and said in one line: that answer is then
    made again. `append` flushes each line."""

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr))

    def read(self) -> list[dict]:
        """All complete, intact records (their seals removed)."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # no newline at the end: the last write never finished
            with open(self.path, "r+b") as f:
                f.truncate(end)
            data = data[:end]
        records, kept, damaged = [], [], []
        # Lines end at "\n" only: a JSON string may hold U+2028, U+2029 or U+0085 raw (valid JSON,
        # written so by ensure_ascii=False), which str.splitlines() would split inside.
        for lineno, raw in enumerate(data.split(b"\n")[:-1], start=1):
            if not raw.strip():
                continue
            why = None
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                why = "not valid JSON"
            else:
                if not isinstance(record, dict):
                    why = "not a JSON object"
                elif not seal_ok(record):
                    why = "its content differs from its checksum"
            if why is not None:
                damaged.append((lineno, raw, why))
                continue
            record.pop(SEAL, None)
            records.append(record)
            kept.append(raw)
        if damaged:
            self._set_aside(kept, damaged)
        return records

    def _set_aside(self, kept: list[bytes], damaged: list[tuple[int, bytes, str]]) -> None:
        """Move damaged lines to `<name>.damaged` (appended, so nothing is ever lost) and rewrite the
        log without them (a new file renamed over it: a kill leaves the old one or the new one)."""
        import os

        aside = self.path.with_name(self.path.name + ".damaged")
        with open(aside, "ab") as f:
            f.write(b"".join(raw + b"\n" for _, raw, _ in damaged))
            f.flush()
            os.fsync(f.fileno())
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_bytes(b"".join(raw + b"\n" for raw in kept))
        os.replace(tmp, self.path)
        for lineno, _, why in damaged:
            self.warn(
                f"{self.path}:{lineno} was damaged ({why}): moved to {aside.name}; what it recorded is made again"
            )

    def append(self, record: dict) -> None:
        line = json.dumps(seal(record), ensure_ascii=False, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()  # on disk as far as a killed process is concerned (no fsync: power loss is rarer)
