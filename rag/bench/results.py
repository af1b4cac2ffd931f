"""Append-only JSONL logs in a benchmark's --out folder, which are what makes a run resumable.

`results.jsonl` holds one line per (generator, question); `generators.jsonl` one line per time a
generator was loaded (load time, peak memory, model versions). Each line is written and flushed
as soon as it is known, so a killed run loses at most the line it was writing; reading drops
such a torn last line, and the next run with the same --out skips every pair already there.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.errors import RagError

RESULTS = "results.jsonl"
SESSIONS = "generators.jsonl"


class JsonlLog:
    """One JSON object per line; `read` tolerates a torn last line, `append` flushes each line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[dict]:
        """All complete records. A torn last line (killed mid-write) is cut off the file."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # no newline at the end: the last write never finished
            with open(self.path, "r+b") as f:
                f.truncate(end)
            data = data[:end]
        records = []
        # Lines end at "\n" only: a JSON string may hold U+2028, U+2029 or U+0085 raw (valid JSON,
        # written so by ensure_ascii=False), which str.splitlines() would split inside.
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise RagError(
                    f"{self.path}:{lineno} is not valid JSON (damaged): move that file aside to answer every "
                    "question again, or choose another --out (nothing was changed)"
                ) from None
            if not isinstance(record, dict):
                raise RagError(f"{self.path}:{lineno} is not a JSON object: choose another --out")
            records.append(record)
        return records

    def append(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()  # on disk as far as a killed process is concerned (no fsync: power loss is rarer)
