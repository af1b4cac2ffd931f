"""The encoder-only embedder on ONNX Runtime: the same sentence-transformers model, exported once
with PyTorch's own ONNX exporter, then run without torch, so a search starts in well under a
second instead of paying seven to import torch and sentence-transformers.

The export (and its int8 dynamic quantisation, ONNX Runtime's) is cached under
`$RAG_CACHE/onnx/<model>-<key>/`, keyed by the model's files (names, sizes, modification
times), with the SHA-256 of each file it wrote: a missing or damaged export is made again, with
one line saying so. Pooling and normalisation are sentence-transformers' (read from the model's
`modules.json` and pooling config: mean or CLS token, then L2), done in NumPy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import DEFAULT_BATCH_SIZE, cache_dir
from ..errors import EmbedderNotAvailable
from ..store import file_sha256
from .names import canonical_name, model_folder

# Part of the cache key: a change in how the export is made (exporter, fusions, quantisation)
# makes a new export instead of reusing one made the old way.
RECIPE = "torchscript-eager-attention-fused/u8-per-channel/2"
FILES = {"onnx": "model-int8.onnx", "onnx-fp32": "model.onnx"}
EXPORT = "export.json"


def export_folder(name: str) -> Path | None:
    """Where the export of `name` is (or would be) cached; None when the model is not local."""
    folder = model_folder(name)
    if folder is None:
        return None
    listing = sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    key = hashlib.sha256(json.dumps([name, listing, RECIPE]).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.split("/")[-1])
    return cache_dir() / "onnx" / f"{safe}-{key}"


def cached(name: str, backend: str) -> Path | None:
    """The export of `name` for `backend` if it is cached and intact (its recorded size and hash)."""
    folder = export_folder(name)
    try:
        if folder is None or not (folder / EXPORT).is_file() or not os.access(folder / EXPORT, os.R_OK):
            return None
        recorded = json.loads((folder / EXPORT).read_text())["files"][FILES[backend]]
        path = folder / FILES[backend]
        if path.stat().st_size != recorded["size"] or file_sha256(path) != recorded["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return folder


def export(name: str, notify: Callable[[str], None] | None = None) -> Path:
    """Export `name` to ONNX (fp32 and int8) into the cache, replacing a damaged export; needs
    torch and transformers (once)."""
    folder = model_folder(name)
    target = export_folder(name)
    if folder is None or target is None:
        raise EmbedderNotAvailable(f"embedder {name!r} is not available locally, so it cannot be exported to ONNX")
    if target.exists() and not (target / EXPORT).is_file():
        raise EmbedderNotAvailable(
            f"{target} is in the way of rag's ONNX export of {name} and rag did not make it (no {EXPORT}): "
            "move it away, or point $RAG_CACHE elsewhere"
        )
    say = notify or (lambda message: print(message, file=sys.stderr))
    if (target / EXPORT).exists():
        say(f"the cached ONNX export of {name} in {target} is damaged or incomplete: exporting it again")
    else:
        say(f"exporting {name} to ONNX once (about half a minute), cached in {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))  # new, so ours to remove
    try:
        settings = _export(folder, work)
        files = {}
        for file in (*FILES.values(), "tokenizer.json"):
            files[file] = {"size": (work / file).stat().st_size, "sha256": file_sha256(work / file)}
        (work / EXPORT).write_text(
            json.dumps({"model": name, "source": str(folder), "files": files, **settings}, indent=2)
        )
        if target.exists():
            shutil.rmtree(target)  # rag's own export (it holds export.json, checked above), damaged
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _export(folder: Path, out: Path) -> dict:
    """The shared export (`rag.onnx.export`, task feature-extraction) and this model's pooling."""
    from transformers import AutoConfig, AutoTokenizer

    from ..onnx.export import export_onnx

    pooling, max_length = _sentence_transformers_config(folder)
    names = export_onnx(folder, out / FILES["onnx-fp32"], out / FILES["onnx"], "feature-extraction")
    AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer.save(str(out / "tokenizer.json"))
    config = AutoConfig.from_pretrained(str(folder))
    return {"pooling": pooling, "max_seq_length": max_length, "dimension": int(config.hidden_size), "inputs": names}


def _sentence_transformers_config(folder: Path) -> tuple[str, int]:
    """(pooling mode, max sequence length) from the model's sentence-transformers files."""
    pooling, max_length = "mean", 512
    try:
        modules = json.loads((folder / "modules.json").read_text())
        for module in modules:
            if module.get("type", "").endswith("Pooling"):
                config = json.loads((folder / module["path"] / "config.json").read_text())
                if config.get("pooling_mode_cls_token"):
                    pooling = "cls"
                elif not config.get("pooling_mode_mean_tokens", True):
                    raise EmbedderNotAvailable(
                        f"the model in {folder} pools in a way rag's ONNX backend does not: use --backend torch"
                    )
        max_length = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", max_length)
    except (OSError, ValueError):
        pass
    return pooling, int(max_length)


def usable_cache(name: str) -> str | None:
    """Why the ONNX export cache of `name` cannot be used by this user (another user's cache, no
    permission to read it or to write beside it), or None when it can."""
    try:
        target = export_folder(name)
    except OSError as e:
        return f"cannot read the model's files ({e.strerror or e})"
    if target is None:
        return None
    try:
        if target.exists():
            readable = os.access(target, os.R_OK | os.X_OK) and all(
                os.access(target / file, os.R_OK)
                for file in (EXPORT, *FILES.values(), "tokenizer.json")
                if (target / file).exists()
            )
            if not readable:
                return f"{target} is not readable by this user (permission denied)"
            return None
        parent = next((p for p in target.parents if p.exists()), None)
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            return f"{parent} is not writable by this user (permission denied), so the export cannot be cached there"
    except OSError as e:
        return f"{target}: {e.strerror or e}"
    return None


class _OffsetTokenizer:
    """A `tokenizers` tokenizer behind the call the chunker makes of a Hugging Face one."""

    def __init__(self, tokenizer) -> None:
        self.inner = tokenizer

    def __call__(self, text: str, **kwargs) -> dict:
        return {"offset_mapping": self.inner.encode(text, add_special_tokens=False).offsets}


class OnnxEmbedder:
    """The `rag.embedders.Embedder` interface on ONNX Runtime; the session loads on first use."""

    def __init__(
        self,
        name: str,
        backend: str = "onnx",
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if backend not in FILES:
            raise ValueError(f"not an ONNX backend: {backend!r}")
        self.name, self.backend, self.batch_size = canonical_name(name), backend, batch_size
        self.threads = threads
        self.notify = notify
        self.sort_by_length = True  # False only to measure what sorting saves (benchmarks/onnx_backend.py)
        self.device = "cpu"

    @cached_property
    def folder(self) -> Path:
        return cached(self.name, self.backend) or export(self.name, self.notify)

    @cached_property
    def settings(self) -> dict:
        return json.loads((self.folder / EXPORT).read_text())

    @cached_property
    def session(self):
        from ..onnx.session import cpu_session

        return cpu_session(self.folder / FILES[self.backend], self.threads)

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_tokens)
        return tokenizer

    @cached_property
    def tokenizer(self) -> _OffsetTokenizer:
        """The chunker's tokenizer (no truncation), loaded once: the chunker asks for it per file,
        and reading tokenizer.json each time cost ~35 ms a file."""
        from tokenizers import Tokenizer

        plain = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        plain.no_truncation()
        plain.no_padding()
        return _OffsetTokenizer(plain)

    @property
    def dimension(self) -> int:
        return int(self.settings["dimension"])

    @property
    def max_tokens(self) -> int:
        return int(self.settings["max_seq_length"])

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dimension), each row of unit length. Texts are batched by
        length (shortest first), so a batch pads little."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = list(range(len(texts)))
        if self.sort_by_length:
            order.sort(key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        names = [i.name for i in self.session.get_inputs()]
        for start in range(0, len(order), self.batch_size):
            batch = [encodings[i] for i in order[start : start + self.batch_size]]
            width = max(len(e.ids) for e in batch)
            feeds = {
                "input_ids": np.array([e.ids + [0] * (width - len(e.ids)) for e in batch], dtype=np.int64),
                "attention_mask": np.array(
                    [e.attention_mask + [0] * (width - len(e.ids)) for e in batch], dtype=np.int64
                ),
                "token_type_ids": np.array([e.type_ids + [0] * (width - len(e.ids)) for e in batch], dtype=np.int64),
            }
            hidden = self.session.run(None, {n: feeds[n] for n in names})[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            if self.settings.get("pooling") == "cls":
                pooled = hidden[:, 0]
            else:
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[order[start : start + self.batch_size]] = pooled
        return out
