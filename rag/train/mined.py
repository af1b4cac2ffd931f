"""Training groups mined with rag's retrievers, kept in the run folder (`groups.json`).

Mining retrieves passages for every training question (about 25 minutes on SQuAD's training set
on two cores), and its hard negatives depend on the index it searched: an index rebuilt on
another CPU (int8 embeddings differ in their last bits between instruction sets) can rank other
passages first, and a run's fingerprint check would then refuse to resume on the new groups. So
a run mines once and every later call, in this session or another, reads the same groups back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.train.checkpoints import GROUPS
from rag.train.reranker import Group
from rag.train.retrieved import read_keyed, write_keyed

__all__ = ["GROUPS", "cached_groups"]


def cached_groups(out: Path, key: dict, mine: Callable[[], list[Group]], say: Callable[[str], None]) -> list[Group]:
    """`mine()`'s groups, computed once per run and kept in out/groups.json under `key` (the data's
    hash, the held-in articles, the group size, the seed); a damaged or other-key file is mined again."""
    path = out / GROUPS
    cached = read_keyed(path, key, "groups", "mining again", say)
    if isinstance(cached, list):
        try:
            groups = [Group(str(q), [str(p) for p in passages]) for q, passages in cached]
            say(f"{len(groups)} mined groups read from {path}")
            return groups
        except (TypeError, ValueError):
            say(f"{path} is damaged: mining again")
    groups = mine()
    write_keyed(path, key, "groups", [[g.question, g.passages] for g in groups])
    return groups
