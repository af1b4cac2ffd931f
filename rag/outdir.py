"""Output folders that rag's commands write results into (`rag bench --out`, `rag cost --out`).

A folder is ours only if it holds our marker file; anything else that is not empty is refused
untouched, so a user who points --out at the wrong folder loses nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from rag.errors import RagError


def claim_out(out: Path, tool: str) -> Path:
    """Make `out` a folder `rag TOOL` writes to, or prove it is one (it holds rag-TOOL.json);
    return the marker's path. A file, or a non-empty folder without the marker, is refused with
    one line and nothing in it is touched."""
    marker = out / f"rag-{tool}.json"
    if out.is_symlink() and not out.exists():
        raise RagError(
            f"--out {out} is a symbolic link to {out.readlink()}, which does not exist: "
            "give a new or empty folder for the results (the link was left as it is)"
        )
    if out.exists() and not out.is_dir():
        raise RagError(f"--out {out} is a file: give a new or empty folder for the results")
    if out.is_dir():
        try:
            ours = json.loads(marker.read_text(encoding="utf-8")).get("format") == f"rag-{tool}"
        except (OSError, ValueError, AttributeError):
            ours = False
        if ours:
            return marker
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            raise RagError(
                f"--out {out} holds {len(entries)} entries ({', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}) "
                f"that `rag {tool}` did not write (no {marker.name}): choose a new or empty folder (nothing was changed)"
            )
    out.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    marker.write_text(json.dumps({"format": f"rag-{tool}", "created": created}) + "\n", encoding="utf-8")
    return marker
