"""Progress bars with ETA, shared by the build, the bench and training: tqdm on stderr when asked
for, nothing at all (not even the import) when not."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def over(items: Iterable, desc: str, enabled: bool, unit: str, total: int | None = None) -> Iterable:
    """`items`, moving a bar as they are consumed when `enabled`."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)


def bar(total: int, desc: str, enabled: bool, unit: str):
    """A bar to `update()` by hand, or None when not `enabled`."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)


def label(name: str, width: int = 24) -> str:
    """A bar's description cut from the left, where names differ least."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]
