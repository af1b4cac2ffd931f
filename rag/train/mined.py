"""Training groups mined with rag's retrievers, kept in the run folder (`groups.json`).

Mining retrieves passages for every training question (about 25 minutes on SQuAD's training set
on two cores), and its hard negatives depend on the index it searched: an index rebuilt on
another CPU (int8 embeddings differ in their last bits between instruction sets) can rank other
passages first, and a run's fingerprint check would then refuse to resume on the new groups. So
a run mines once and every later call, in this session or another, reads the same groups back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from rag.train.checkpoints import GROUPS
from rag.train.reranker import Group

__all__ = ["GROUPS", "cached_groups"]


def cached_groups(out: Path, key: dict, mine: Callable[[], list[Group]], say: Callable[[str], None]) -> list[Group]:
    """`mine()`'s groups, computed once per run and kept in out/groups.json under `key` (the data's
    hash, the held-in articles, the group size, the seed); a damaged or other-key file is mined again."""
    path = out / GROUPS
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        cached = None
    except (OSError, ValueError) as e:
        say(f"{path} cannot be read ({str(e)[:80]}): mining again")
        cached = None
    if isinstance(cached, dict) and cached.get("key") == key and isinstance(cached.get("groups"), list):
        try:
            groups = [Group(str(q), [str(p) for p in passages]) for q, passages in cached["groups"]]
            say(f"{len(groups)} mined groups read from {path}")
            return groups
        except (TypeError, ValueError):
            say(f"{path} is damaged: mining again")
    groups = mine()
    work = out / f".{GROUPS}.tmp"
    work.write_text(json.dumps({"key": key, "groups": [[g.question, g.passages] for g in groups]}), encoding="utf-8")
    os.replace(work, path)
    return groups
