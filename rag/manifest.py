"""What one generation of an index is: settings, counts and the checksum of each of its files.

It is stored in meta.sqlite with the generation it describes, in the same transaction that
makes that generation current, so the manifest, the SQLite rows and the generation's FAISS and
BM25 files are always read as one version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from .store import FORMAT, FORMAT_VERSION


@dataclass
class Manifest:
    generation: int
    embedder: str
    dimension: int
    index_type: str
    chunking: dict  # tokens, overlap, tokenizer
    bm25: dict
    source: str
    counts: dict  # documents, chunks (live), terms (BM25 vocabulary), segments (rows per base segment), base, delta, deleted
    files: dict  # path inside the generation folder -> {"size", "sha256"}
    id_sum: int  # sum of the live chunk ids mod 2**63: FAISS and BM25 are checked against it on load
    created: str
    updated: str
    backend: str = "torch"  # what embedded the chunks: torch, onnx (int8) or onnx-fp32
    base_generation: int = 0  # the generation whose merge wrote the base segment (see rag.segments)
    index_params: dict = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    normalized: bool = True
    metric: str = "inner_product"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and check a manifest; ValueError says what is wrong with it."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"the manifest is {type(data).__name__}, not an object")
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unknown format {data.get('format')!r} version {data.get('format_version')!r}")
        kinds = {
            "generation": int,
            "embedder": str,
            "dimension": int,
            "index_type": str,
            "chunking": dict,
            "bm25": dict,
            "source": str,
            "counts": dict,
            "files": dict,
            "created": str,
            "updated": str,
            "id_sum": int,
            "base_generation": int,
        }
        for name, kind in kinds.items():
            if not isinstance(data.get(name), kind):
                raise ValueError(f"its {name!r} is missing or not a {kind.__name__}")
        for name in ("documents", "chunks", "terms", "base", "delta", "deleted"):
            if not isinstance(data["counts"].get(name), int):
                raise ValueError(f"its counts lack {name!r}")
        if not isinstance(data["counts"].get("segments"), list) or not all(
            isinstance(n, int) for n in data["counts"]["segments"]
        ):
            raise ValueError("its counts lack the rows of each segment")
        for name in ("tokens", "overlap"):
            if not isinstance(data["chunking"].get(name), int):
                raise ValueError(f"its chunking lacks {name!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
