"""What the commands print, and how: text made safe for a terminal, warnings, the comparison
table and timings. Kept apart from the commands so every command escapes text the same way."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click

TERMINAL = (100, 20)  # the size assumed when the output is not a terminal
WIDE_TERMINAL = (120, 20)  # the same, for the comparison table


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def terminal_width(fallback: tuple[int, int] = TERMINAL) -> int:
    return shutil.get_terminal_size(fallback).columns


def shown(text: str, newlines: bool = False) -> str:
    """Text safe to print on a terminal: control and format characters (an ANSI escape in a file
    name, a newline inside a citation, a right-to-left override) appear escaped, as \\x1b or
    \\n; with `newlines`, line breaks and tabs stay as they are. JSON output needs none of this."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (newlines and c in "\n\t") else repr(c)[1:-1] for c in text)


def warn(message: str) -> None:
    click.secho(f"warning: {shown(message)}", fg="yellow", err=True)


def score(value: float) -> str:
    """Three decimals, or three significant digits for a score too large to print that way."""
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.3g}"


def indent(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(text, width=max(40, width - 2), initial_indent="    ", subsequent_indent="    ")


def comparison_table(results: Sequence[Any]) -> str:
    """`rag compare`'s answers, one row per generator; the answer column takes what the terminal leaves."""
    width = terminal_width(WIDE_TERMINAL)
    header = ("generator", "family", "answer", "source", "latency", "prompt tok", "cut")
    rows = []
    for r in results:
        if r.answer is None:
            rows.append((shown(r.name), "-", "(not available)", "-", "-", "-", "-"))
            continue
        a = r.answer
        source = f"[{a.span.passage + 1}]" if a.span is not None else "-"
        rows.append(
            (
                shown(r.name),
                a.family,
                shown(" ".join(a.text.split())) or "(empty)",
                source,
                f"{a.timings.get('generation_ms', 0):.0f} ms",
                str(a.prompt_tokens),
                str(a.passages_cut),
            )
        )
    fixed = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    answer_width = max(20, width - sum(w for i, w in enumerate(fixed) if i != 2) - 3 * (len(header) - 1))
    fixed[2] = min(fixed[2], answer_width)

    def line(cells: Sequence[str]) -> str:
        cells = [c if len(c) <= fixed[i] else c[: fixed[i] - 1] + "…" for i, c in enumerate(cells)]
        return " | ".join(c.ljust(fixed[i]) if i < len(cells) - 1 else c for i, c in enumerate(cells))

    return "\n".join([line(header), "-+-".join("-" * w for w in fixed), *(line(row) for row in rows)])


def print_timings(answer: Any) -> None:
    """`rag ask -v`: where the time went and what the context budget kept, for a reader or a generator."""
    t = answer.timings
    if answer.found is not None:  # a reader: it read, it did not generate
        click.echo(
            f"\nretrieval {t.get('retrieval_ms', 0):.0f} ms, reading {t.get('read_ms', 0):.0f} ms "
            f"({answer.prompt_tokens} tokens in question + passage windows); span score above no-answer: "
            f"{answer.score if answer.score is not None else '-'}"
        )
        for c in answer.candidates:
            click.echo(f"  {c['score']:8.3f}  {shown(c['citation'])}: {shown(c['text'])}")
        return
    click.echo(
        f"\nretrieval {t.get('retrieval_ms', 0):.0f} ms, generation {t.get('generation_ms', 0):.0f} ms, "
        f"{t.get('tokens_per_s', 0):.1f} tokens/s, prompt {answer.prompt_tokens} tokens, "
        f"answer {answer.output_tokens} tokens, passages cut or dropped: {answer.passages_cut}"
    )
    if answer.dtype_reason:
        click.echo(f"  {answer.dtype} ({shown(answer.dtype_reason)})")
    if answer.fid:
        click.echo("  Fusion-in-Decoder: each passage was encoded with the question on its own")
    for item in answer.budget:
        click.echo(f"  #{item.rank} {shown(item.citation)}: {item.status} ({item.tokens} tokens)")
