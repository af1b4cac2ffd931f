"""The README and docs/: every relative link resolves (files and #anchors), and every `rag …`
command they name exists (checked against the CLI itself, as `--help` would)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
COMMAND = re.compile(r"(?:^|[\s`$(])(?:\.venv/bin/)?rag((?: [a-z][a-z0-9-]*)+)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = CODE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    text = CODE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{page.name}: {target} (no such heading)"


def test_every_rag_command_named_exists():
    import click

    from rag.cli import main

    named: set[tuple[str, ...]] = set()
    for page in PAGES:
        for code in CODE.findall(page.read_text(encoding="utf-8")):
            for match in COMMAND.finditer(code):
                words = tuple(match.group(1).split())
                if words[0] != "import":  # `from rag import ...` in Python code
                    named.add(words)
    assert len(named) > 10
    for words in sorted(named):
        command, path = main, ["rag"]
        for word in words:
            if not isinstance(command, click.Group) or word not in command.commands:
                break  # the rest are arguments (a question, a folder)
            command = command.commands[word]
            path.append(word)
        assert len(path) > 1, f"`rag {' '.join(words)}` names no command"
        if isinstance(command, click.Group) and len(words) > len(path) - 1 and command.commands:
            raise AssertionError(f"`{' '.join(path)} {words[len(path) - 1]}`: no such subcommand")
