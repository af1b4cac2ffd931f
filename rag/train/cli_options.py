"""The options every `rag train` command shares: where the data and the run are, the device and
precision, learning curves, and the command line a card records."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from rag.errors import RagError


def _command(params: dict, data: Path, what: str = "reader") -> str:
    """The command that reproduces this run, every setting spelled out (for the model card). Paths are
    relative: a data file given by an absolute path is named alone, and --out by its folder's name,
    so a card never records a path of the machine it was trained on."""
    words = ["rag", "train", what, "--data", data.name if data.is_absolute() else str(data)]
    for key, value in params.items():
        if key in ("data", "quiet", "curve") or value is None or value is False or value == "":
            continue
        if key in ("out", "from_run"):
            value = Path(value).name
        words += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return shlex.join(words)


def _run_options(f):
    """--data, --out, --base and --held-in: where a training run reads, writes and starts from."""
    f = click.option(
        "--held-in",
        type=click.IntRange(min=0),
        default=4,
        show_default=True,
        help="Articles kept out of training and evaluated on (0: train on every article).",
    )(f)
    f = click.option(
        "--base",
        default="all-MiniLM-L6-v2",
        show_default=True,
        help="Encoder to start from: the packaged MiniLM, a folder, or a Hub id in the cache.",
    )(f)
    f = click.option(
        "--out",
        type=click.Path(path_type=Path, file_okay=False),
        required=True,
        help="Folder for checkpoints and the model (new or empty, or an earlier run's: it resumes).",
    )(f)
    return click.option(
        "--data",
        type=click.Path(path_type=Path),
        default=None,
        help="SQuAD v1.1 .json or rag QA .jsonl (default: ../shared/datasets/squad/train-v1.0.json, SQuAD's training set).",
    )(f)


def _end_options(f):
    """--seed, --threads, --no-onnx and --quiet."""
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")(f)
    f = click.option("--no-onnx", is_flag=True, help="Do not export ONNX (fp32 and int8) when training ends.")(f)
    f = click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")(
        f
    )
    return click.option("--seed", type=int, default=0, show_default=True)(f)


def _device_option(f):
    """--device: where the run computes (the CPU, or a CUDA GPU with bf16 autocast)."""
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="auto: a CUDA GPU where torch sees one, else the CPU (see --precision for bf16 autocast). "
        "A checkpoint continues on either.",
    )(f)


def _precision_option(f):
    """--precision: bf16 autocast or float32, chosen per CPU by default (`rag.train.device`)."""

    def prefer(ctx, param, value):
        from click.core import ParameterSource

        from rag.train.device import prefer_precision

        if ctx.get_parameter_source(param.name) != ParameterSource.DEFAULT:
            prefer_precision(value)  # left unset, the process's own choice (auto) stands
        return value

    return click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16"]),
        default="auto",
        show_default=True,
        expose_value=False,
        callback=prefer,
        help="auto: bf16 autocast on a GPU and on a CPU with native bfloat16 (avx512_bf16, amx_bf16), "
        "float32 elsewhere; weights stay float32 either way.",
    )(f)


def _data(data: Path | None) -> Path:
    """The training data: --data, else SQuAD's training set in ../shared; one line where it is missing."""
    from rag.train.run_reader import DEFAULT_DATA

    data = data or DEFAULT_DATA
    if not data.exists():
        raise RagError(f"{data}: no such file: pass --data with a SQuAD v1.1 .json or rag QA .jsonl file")
    return data


def _curve(text: str) -> list[int]:
    try:
        points = sorted({int(p) for p in text.replace(" ", "").split(",") if p})
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give numbers of questions, e.g. 5000,10000,20000", param_hint="--curve"
        ) from None
    if any(p <= 0 for p in points):
        raise click.BadParameter(f"{text!r}: numbers of questions are positive", param_hint="--curve")
    return points
