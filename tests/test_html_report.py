"""report.html and `rag compare --html`: one self-contained page, escaped, checked in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_qa_set
from test_bench import bench_cache, config, models, read_jsonl  # noqa: F401 (fixtures)

from rag.bench.html import HTML, esc, render
from rag.bench.runner import run_bench
from rag.cli import main
from rag.errors import RagError

# A document that tries everything: markup, an entity, quotes, a script that would mark the page
# if it ran, and a terminal escape.
HOSTILE = (
    "<b>Bold</b> & \"quoted\" 'single' <script>document.body.setAttribute('data-pwned','1')</script> "
    "\x1b[31mred\x1b[0m. The Eiffel Tower is in Paris.\n"
)
DOCS = {
    "tower.md": HOSTILE,
    "bert.md": "BERT is an encoder-only transformer pre-trained with masked language modelling.\n",
    "gpt2.md": "GPT-2 is a decoder-only language model with a context window of 1024 tokens.\n",
}
QUESTIONS = [
    {"id": "q1", "question": "Where is the <Eiffel> Tower & why?", "answer": "Paris", "doc": "tower.md"},
    {
        "id": "q2",
        "question": "Which objective is BERT pre-trained with?",
        "answer": "masked language modelling",
        "doc": "bert.md",
    },
    {"id": "q3", "question": "How long is GPT-2's context window?", "answer": "1024 tokens", "doc": "gpt2.md"},
]


@pytest.fixture(scope="module")
def hostile_set(tmp_path_factory) -> Path:
    return write_qa_set(tmp_path_factory.mktemp("hostile") / "mini", DOCS, QUESTIONS)


@pytest.fixture(scope="module")
def bench_page(tmp_path_factory, hostile_set, models, embedder) -> Path:
    out = tmp_path_factory.mktemp("page") / "out"
    names = [models["t5"], models["gpt2"], "no-such-model-anywhere"]
    run_bench(config(hostile_set, out, embedder, generators=names, extractive=True, passages=2))
    return out


def questions_part(page: str) -> str:
    """The per-question part of a page, without times (which differ between two runs)."""
    part = page[page.index('<div id="questions">') :]
    return re.sub(r'<td class="num">[0-9]+ ms</td>', "", part)


def test_bench_writes_one_self_contained_page(bench_page):
    page = (bench_page / HTML).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from anywhere
    assert "data:image/png;base64," in page  # the plots, inline
    assert page.count('<section class="question"') == 3
    assert "Paris" in page and "masked language modelling" in page


def test_text_from_documents_questions_and_answers_is_escaped(bench_page):
    page = (bench_page / HTML).read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1 and "pwned" not in scripts[0]  # only the page's own script
    assert "&lt;script&gt;document.body.setAttribute(&#x27;data-pwned&#x27;,&#x27;1&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &quot;quoted&quot;" in page
    assert "Where is the &lt;Eiffel&gt; Tower &amp; why?" in page
    assert "\x1b" not in page and "\\x1b[31mred" in page


def test_the_page_is_valid_html5(bench_page):
    html5lib = pytest.importorskip("html5lib")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse((bench_page / HTML).read_text(encoding="utf-8"))  # raises on any parse error
    assert not parser.errors


def test_a_highlight_is_exactly_the_span(bench_page):
    page = (bench_page / HTML).read_text(encoding="utf-8")
    spans = [r for r in read_jsonl(bench_page / "results.jsonl") if r.get("span")]
    assert spans, "extractive answers cite a span"
    for r in spans:
        passage = r["passages"][r["span"]["passage"]]["text"]
        assert passage[r["span"]["start"] : r["span"]["end"]] == r["answer"]
        assert f"<mark>{esc(r['answer'])}</mark>" in page


def test_an_answerer_that_did_not_run_shows_its_error(bench_page):
    page = (bench_page / HTML).read_text(encoding="utf-8")
    assert "no-such-model-anywhere did not run:" in page
    assert re.search(r"<td class=\"\">no-such-model-anywhere</td><td class=\"\">not available</td>", page)


def test_a_resumed_runs_page_equals_a_one_go_runs(tmp_path, hostile_set, models, embedder):
    names = [models["t5"], models["gpt2"]]
    resumed = tmp_path / "resumed"
    run_bench(config(hostile_set, resumed, embedder, generators=names, limit=1, sample_seed=0))
    run_bench(config(hostile_set, resumed, embedder, generators=names))
    fresh = tmp_path / "fresh"
    run_bench(config(hostile_set, fresh, embedder, generators=names))
    a, b = ((out / HTML).read_text(encoding="utf-8") for out in (resumed, fresh))
    assert questions_part(a) == questions_part(b) and a.count('<section class="question"') == 3


def test_render_of_a_record_with_an_error(bench_page):
    summary = json.loads((bench_page / "summary.json").read_text(encoding="utf-8"))
    record = {**read_jsonl(bench_page / "results.jsonl")[0], "error": "the context budget <is> too small", "answer": ""}
    page = render(summary, [record])
    assert "error: the context budget &lt;is&gt; too small" in page


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_pages_are_written_with_the_mode_the_umask_gives(mask, tmp_path, bench_page):
    import os

    from rag.bench.html import write_page

    previous = os.umask(mask)
    try:
        write_page(tmp_path / "page.html", "<!doctype html><title>t</title>")
    finally:
        os.umask(previous)
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (bench_page / HTML).stat().st_mode & 0o777 == (bench_page / "summary.json").stat().st_mode & 0o777


def test_compare_html_writes_the_view_and_refuses_a_foreign_file(tmp_path, corpus_index, models):
    target = tmp_path / "compare.html"
    args = [
        "compare",
        "What is BERT pre-trained with?",
        "-g",
        f"{models['t5']},{models['gpt2']}",
        "--extractive",
        "--index",
        str(corpus_index.path),
        "--max-new-tokens",
        "4",
        "--html",
        str(target),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    page = target.read_text(encoding="utf-8")
    assert page.count('<section class="question"') == 1 and "<mark>" in page and "passages given to" in page
    again = CliRunner().invoke(main, args)  # its own page: rewritten
    assert again.exit_code == 0
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my notes</html>")
    refused = CliRunner().invoke(main, [*args[:-1], str(mine)])
    assert refused.exit_code == 1 and "was not written by rag" in refused.output
    assert mine.read_text() == "<html>my notes</html>"
    with pytest.raises(RagError, match="is a folder"):
        from rag.bench.html import check_page_target

        check_page_target(tmp_path)


# --- in a real browser --------------------------------------------------------------------------


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: `apt-get install chromium` (Debian) to check report.html "
    "in a real browser; .ci/run installs it",
)
def test_the_page_in_a_real_browser(tmp_path, bench_page):
    from PIL import Image

    url = (bench_page / HTML).resolve().as_uri()
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1800", url)
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 1800) and len(image.getcolors(1 << 16) or []) > 20  # laid out: not a blank page

    dom = chromium(tmp_path, "--dump-dom", url).stdout
    assert re.search(r"<table class=\"summary\">.*?<td class=\"\">[^<]+</td>", dom, flags=re.S)
    assert '<form id="controls">' in dom  # the script ran and showed the controls
    assert not re.search(r"<body[^>]*data-pwned", dom)  # the document's script did not run
    assert dom.count('<section class="question"') == 3 and " hidden=" not in dom.split('id="questions"')[1]

    filtered = chromium(tmp_path, "--dump-dom", url + "#filter=missed,wrong,disagree").stdout
    sections = re.findall(r"<section class=\"question\"[^>]*>", filtered)
    hidden = [s for s in sections if " hidden" in s]
    expected = [s for s in sections if not all(f'data-{k}="1"' in s for k in ("missed", "wrong", "disagree"))]
    assert len(sections) == 3 and hidden == expected and hidden
    assert re.search(r"\d of 3 shown", filtered)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (.ci/run installs it)")
def test_an_unbroken_5000_character_question_stays_inside_the_page(tmp_path, bench_page):
    summary = json.loads((bench_page / "summary.json").read_text())
    records = read_jsonl(bench_page / "results.jsonl")
    long = "x" * 5000
    records = [{**r, "question": long} if "question" in r else r for r in records]
    page = render(summary, records)
    assert long in page
    probe = (
        "<script>window.addEventListener('load', function () { document.body.setAttribute('data-wide', "
        "String(document.documentElement.scrollWidth > window.innerWidth)); });</script></body>"
    )
    target = tmp_path / "long.html"
    target.write_text(page.replace("</body>", probe), encoding="utf-8")
    dom = chromium(tmp_path, "--window-size=1280,900", "--dump-dom", target.resolve().as_uri()).stdout
    assert 'data-wide="false"' in dom, dom[:300]
