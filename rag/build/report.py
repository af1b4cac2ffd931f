"""What a build did, for the CLI's summary line and `--json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class BuildReport:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_embedded: int = 0
    chunks_reused: int = 0  # new chunk rows whose text already had a vector
    documents: int = 0
    chunks: int = 0
    generation: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.chunks} chunks: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged, {len(self.skipped)} skipped; "
            f"{self.chunks_embedded} chunks embedded, {self.chunks_reused} reused, in {self.seconds:.1f}s"
        ) + "".join(f"; {note}" for note in self.notes)

    def to_dict(self) -> dict:
        return asdict(self)
