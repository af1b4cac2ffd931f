"""Click options that several commands share, declared once so their names, help and defaults
cannot drift apart between commands. Defaults and choices come from the library (`rag.config`
and the modules that own them), never from literals here."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import (
    DEFAULT_BM25_WEIGHT,
    DEFAULT_K,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_POOL,
    DEFAULT_RERANK_POOL,
    DEFAULT_RERANKER,
    DEFAULT_RETRIEVER,
    DEFAULT_RRF_K,
    DEFAULT_TEMPERATURE,
    RETRIEVERS,
)
from ..cpu import DTYPES, prefer
from ..errors import RagError

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]

# Smaller chunks than this hold too little text to retrieve by: a bound of the CLI, not the library's.
MIN_CHUNK_TOKENS = 8
CHUNK_TOKENS = click.IntRange(min=MIN_CHUNK_TOKENS)
OVERLAP = click.IntRange(min=0)


class LazyChoice(click.Choice):
    """A click.Choice whose choices a library module owns and is only imported when they are needed
    (checking a value, a command's --help): that module imports numpy, which `rag --help` must not."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._load())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        pass  # click.Choice.__init__ sets them; here they always come from the library


def _embedding_backends() -> tuple[str, ...]:
    from ..embedders import BACKENDS

    return BACKENDS


BACKEND = LazyChoice(_embedding_backends)


def path(what: str) -> Callable[[click.Context, click.Parameter, str | None], Path | None]:
    """A click callback: the value as a Path, refusing an empty string (which Path would read as '.')."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
        if value is None:
            return None
        if not value.strip():
            raise RagError(f"the {what} is empty: give a path")
        return Path(value)

    return convert


def index_option(f: F) -> F:
    return click.option(
        "--index",
        "index_dir",
        default=None,
        callback=path("--index path"),
        help="Index folder (default: $RAG_INDEX, else .rag/ here).",
    )(f)


def k_option(help: str) -> Decorator:
    return click.option("-k", "k", default=DEFAULT_K, show_default=True, type=int, help=help)


def embedder_option(help: str) -> Decorator:
    return click.option("--embedder", default=None, help=help)


def backend_option(help: str) -> Decorator:
    return click.option("--backend", type=BACKEND, default=None, help=help)


def generators_option(help: str) -> Decorator:
    """-g/--generators: a comma-separated list, passed on as `names`."""
    return click.option("--generators", "-g", "names", default=None, help=help)


def max_new_tokens_option(help: str) -> Decorator:
    return click.option(
        "--max-new-tokens", type=click.IntRange(min=1), default=DEFAULT_MAX_NEW_TOKENS, show_default=True, help=help
    )


def json_option(help: str) -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help)


def quiet_option(help: str) -> Decorator:
    return click.option("--quiet", "-q", is_flag=True, help=help)


def retriever_options(command: F) -> F:
    """--retriever, --pool, --rrf-k, --bm25-weight and --mmr, gathered into one `retriever` argument
    (a `rag.retrieve.Retriever`, whose checks turn bad values into one-line errors)."""

    @functools.wraps(command)
    def f(
        *args: Any,
        retriever: str,
        pool: int,
        rrf_k: float,
        bm25_weight: float,
        mmr: float | None,
        reranker: str | None,
        rerank_pool: int,
        **kwargs: Any,
    ) -> Any:
        from ..rerankers.base import RerankSettings
        from ..rerankers.loading import default_reranker, locate
        from ..retrieve import Retriever

        if reranker is None:
            reranker = default_reranker()
        elif reranker.strip().lower() in ("none", "off", ""):
            reranker = None
        rerank = None
        if reranker is not None:
            locate(reranker)  # one line now, before any index is opened
            rerank = RerankSettings(model=reranker, pool=rerank_pool)
        how = Retriever(kind=retriever, pool=pool, rrf_k=rrf_k, bm25_weight=bm25_weight, mmr=mmr, rerank=rerank)
        return command(*args, retriever=how, **kwargs)

    f = click.option(
        "--rerank-pool",
        type=click.IntRange(min=1),
        default=DEFAULT_RERANK_POOL,
        show_default=True,
        help="Candidates the reranker reads (the rest keep the retriever's order after them).",
    )(f)
    f = click.option(
        "--reranker",
        default=None,
        metavar="NAME",
        help="Cross-encoder that rereads the top candidates: minilm-reranker, a CrossEncoder folder or Hub id, "
        f"or none (default: {DEFAULT_RERANKER or 'none'}).",
    )(f)

    f = click.option(
        "--mmr",
        type=float,
        default=None,
        metavar="LAMBDA",
        help="Re-rank by maximal marginal relevance (1: relevance only, 0: novelty only), e.g. 0.7.",
    )(f)
    f = click.option(
        "--bm25-weight",
        type=float,
        default=DEFAULT_BM25_WEIGHT,
        show_default=True,
        help="Weight of the BM25 ranking in hybrid fusion (the dense ranking weighs 1).",
    )(f)
    f = click.option(
        "--rrf-k",
        type=float,
        default=DEFAULT_RRF_K,
        show_default=True,
        help="Reciprocal rank fusion constant of --retriever hybrid.",
    )(f)
    f = click.option(
        "--pool",
        type=int,
        default=DEFAULT_POOL,
        show_default=True,
        help="Candidates taken from each ranking for hybrid fusion (fixed: a larger -k only extends the list) and MMR.",
    )(f)
    f = click.option(
        "--retriever",
        type=click.Choice(RETRIEVERS),
        default=DEFAULT_RETRIEVER,
        show_default=True,
        help="Dense (embedder + FAISS), BM25, or both fused by reciprocal rank fusion.",
    )(f)
    return f  # type: ignore[return-value]


def check_answer_env() -> None:
    """$RAG_DTYPE and $RAG_RUNTIME checked wherever an answering command runs, whether or not the
    answerers it runs read them (a reader reads neither): a bad setting is one line, never ignored."""
    import os

    from ..errors import RagError
    from ..generators.runtime import RUNTIMES

    dtype = os.environ.get("RAG_DTYPE", "").strip().lower()
    if dtype and dtype not in DTYPES:
        raise RagError(f"$RAG_DTYPE is {dtype!r}: use one of {', '.join(DTYPES)}")
    runtime = os.environ.get("RAG_RUNTIME", "").strip().lower()
    if runtime and runtime not in RUNTIMES:
        raise RagError(f"$RAG_RUNTIME is {runtime!r}: use one of {', '.join(RUNTIMES)}")


def dtype_option(f: F) -> F:
    """--dtype: what generators compute in. Checked at once (one line for a bad value), then the
    dtype of every generator this process loads (`rag.cpu.prefer`)."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            prefer(value)  # a bad value is one line
        check_answer_env()
        return value

    return click.option(
        "--dtype",
        default=None,
        callback=remember,
        expose_value=False,
        metavar="|".join(DTYPES),
        help="What generators compute in (default: $RAG_DTYPE, else auto: bfloat16 where this CPU "
        "computes it natively, float32 elsewhere; see `rag models`).",
    )(f)


def generation_options(f: F) -> F:
    """-k, --max-new-tokens, --temperature, --seed and --dtype: how `ask` and `compare` generate."""
    f = dtype_option(f)
    f = click.option("--seed", type=int, default=None, help="Seed for sampling (with --temperature).")(f)
    f = click.option(
        "--temperature",
        type=click.FloatRange(min=0.0),
        default=DEFAULT_TEMPERATURE,
        show_default=True,
        help="0 is greedy and deterministic; above 0 samples.",
    )(f)
    f = max_new_tokens_option("Room kept for the answer.")(f)
    f = k_option("Passages to retrieve.")(f)
    return f


def twin_options(f: F) -> F:
    """--extractive and --fid on commands that run several generators: each adds every generator's
    twin in that mode beside it (`pipeline.with_modes`)."""
    f = click.option(
        "--fid", is_flag=True, help="Also run each encoder-decoder generator with Fusion-in-Decoder, side by side."
    )(f)
    f = click.option(
        "--extractive",
        is_flag=True,
        help="Also run each generator in extractive mode (answers copied from the passages), side by side.",
    )(f)
    return f


def ray_options(what: str) -> Callable[[F], F]:
    """--ray, --ray-address, --ray-workers: `what` says what runs on the cluster (the optional extra rag[ray])."""

    def decorate(f: F) -> F:
        f = click.option(
            "--ray-workers",
            default=2,
            show_default=True,
            type=click.IntRange(min=1),
            help="Ray actors (and tasks at once), one CPU each.",
        )(f)
        f = click.option(
            "--ray-address",
            default=None,
            metavar="ADDR",
            help="The cluster to join (default: $RAY_ADDRESS, else a local one). Implies --ray.",
        )(f)
        f = click.option("--ray", "use_ray", is_flag=True, help=f"{what} (Ray: the optional extra rag[ray]).")(f)
        return f

    return decorate


def ray_config(use_ray: bool, address: str | None, workers: int, ship: bool = False):
    """The RayOptions the flags ask for, or None (nothing imports ray unless they do; the build and
    the bench check that Ray is there before they touch anything)."""
    if not (use_ray or address):
        return None
    from ..cluster import RayOptions

    return RayOptions(address=address, workers=workers, ship=ship)
