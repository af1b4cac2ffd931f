"""report.html: one self-contained page to compare answerers question by question.

The page is made from the same summary and results.jsonl records as report.md (so a resumed
run's page equals a run in one go), and needs nothing else: styles inline, plots as data URIs,
no network. It reads as a static page; a few lines of inline script add filters ("answerers
disagree", "all wrong", "gold not retrieved") and a sort by the F1 difference of two answerers,
and apply a filter named in the address (`report.html#filter=disagree`). Every text that comes
from a document, a question or an answer is escaped, so a document holding `<script>` shows as
text and never runs.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

from rag.bench.report import (
    GENERATOR_COLUMNS,
    PAIRED_COLUMNS,
    _headline,
    _paired_text,
    _rerank_lines,
    _retriever_text,
    family_text,
    generator_rows,
    paired_rows,
    retrieval_rows,
)

HTML = "report.html"
FILTERS = {"disagree": "answerers disagree", "wrong": "all wrong", "missed": "gold not retrieved"}


def esc(text) -> str:
    """Text for HTML: markup escaped, and control characters shown (as \\x1b) rather than sent."""
    text = "" if text is None else str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)
    return html.escape(text, quote=True)


GENERATOR_META = '<meta name="generator" content="rag report">'  # how a page rag wrote is known again


def write_html(summary: dict, records: Sequence[dict], out: Path, plots: Sequence[Path] = ()) -> Path:
    """Write report.html into `out` (a folder `rag bench` has claimed) and return its path."""
    path = out / HTML
    write_page(path, render(summary, records, plots))
    return path


def check_page_target(path: Path) -> None:
    """Refuse, touching nothing, a path that is a folder or a file rag did not write."""
    from rag.errors import RagError

    if path.is_dir():
        raise RagError(f"--html {path} is a folder: give a file name, like compare.html")
    if path.exists():
        try:
            ours = GENERATOR_META in path.read_text(encoding="utf-8", errors="replace")[:2000]
        except OSError:
            ours = False
        if not ours:
            raise RagError(
                f"--html {path} exists and was not written by rag: choose another file (nothing was changed)"
            )
    if not path.parent.is_dir():
        raise RagError(f"--html {path}: the folder {path.parent} does not exist")


def write_page(path: Path, page: str) -> None:
    """Write a page whole (a temporary file renamed over it), after `check_page_target`."""
    import os
    import tempfile

    check_page_target(path)
    from rag.filemode import as_umask_allows

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        as_umask_allows(fd)  # 0644 with the usual umask, as every other file rag writes (not mkstemp's 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(summary: dict, records: Sequence[dict], plots: Sequence[Path] = (), title: str | None = None) -> str:
    """The whole page. `records` are results.jsonl lines (the current answers only)."""
    names = [g["name"] for g in summary.get("generators") or []]
    by_question: dict[str, dict[str, dict]] = {}
    order: list[str] = []
    for r in records:
        if r.get("generator") is None:
            continue
        if r["question_id"] not in by_question:
            by_question[r["question_id"]] = {}
            order.append(r["question_id"])
        by_question[r["question_id"]][r["generator"]] = r
    title = title or f"rag bench: {summary['dataset']['name']}"
    body = [
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(_headline(summary))}.</p>",
        _run_table(summary),
        "<h2>Answerers</h2>",
        _table(
            [h for _, h in GENERATOR_COLUMNS],
            generator_rows(summary),
            numeric_from=2,
            cls="summary",
            roles=[_role(g) for g in summary.get("generators") or []],
        ),
        *(
            f'<p class="error">{esc(g["name"])} did not run: {esc(g["error"])}</p>'
            for g in summary.get("generators") or []
            if g.get("error")
        ),
    ]
    if summary.get("paired"):
        body += [
            "<h2>Paired comparisons</h2>",
            f"<p>{esc(_paired_text(summary))}</p>",
            _table(list(PAIRED_COLUMNS), paired_rows(summary), numeric_from=2),
        ]
    body += ["<h2>Retrieval</h2>", _table(["metric", "value"], retrieval_rows(summary))]
    body += [f"<p>{esc(line)}</p>" for line in _rerank_lines(summary)]
    if plots:
        body += [
            "<h2>Plots</h2>",
            '<div class="plots">',
            *(
                f'<img alt="{esc(p.name)}" src="data:image/png;base64,'
                f'{base64.b64encode(Path(p).read_bytes()).decode("ascii")}">'
                for p in plots
            ),
            "</div>",
        ]
    if order:
        body += [
            "<h2>Questions</h2>",
            _controls(names),
            f'<p class="count">{len(order)} questions; answers as in results.jsonl.</p>',
            '<div id="questions">',
            *(_question(by_question[qid], names) for qid in order),
            "</div>",
        ]
    return PAGE.format(title=esc(title), style=STYLE, body="\n".join(body), script=SCRIPT)


def render_compare(question: str, retrieved: Sequence, results: Sequence, retriever: str, machine: dict) -> str:
    """`rag compare --html`: the same view for one question, without gold answers. `retrieved`
    are the passages retrieved, `results` the comparison's (name, answer, error, load_ms)."""
    from rag.bench.answering import given_passages

    records, rows, roles = [], [], []
    for r in results:
        a = r.answer
        family = a.family if a is not None else "-"
        roles.append(_role({"family": family}))
        rows.append(
            [
                r.name,
                family_text(family, a.questions_trained) if a is not None else "-",
                "-" if a is None else f"{a.timings.get('generation_ms', 0):.0f}",
                "-" if a is None else str(a.prompt_tokens),
                "-" if a is None else str(a.passages_cut),
                r.error or "ok",
            ]
        )
        records.append(
            {
                "generator": r.name,
                "question_id": "1",
                "question": question,
                "answers": [],
                "gold_ids": [],
                "retrieved_ids": [p.doc_path for p in retrieved],
                "offered_ids": [p.doc_path for p in retrieved],
                "answer": a.text if a is not None else "",
                "error": r.error,
                "f1": None,
                "source": a.source if a is not None else None,
                "span": None
                if a is None or a.span is None
                else {"passage": a.span.passage, "start": a.span.start, "end": a.span.end},
                "passages": given_passages(a),
                "timings": dict(a.timings) if a is not None else {},
            }
        )
    names = [r.name for r in results]
    body = [
        "<h1>rag compare</h1>",
        f"<p>{esc(question)}</p>",
        _table(
            ["run", ""],
            [
                ["retriever", retriever],
                ["retrieved", ", ".join(f"[{p.rank}] {p.citation}" for p in retrieved)],
                ["CPU", f"{machine.get('cpu')}, {machine.get('cpus_usable')} usable cores"],
            ],
            numeric_from=2,
            cls="run",
        ),
        "<h2>Answerers</h2>",
        _table(
            ["answerer", "family", "generation ms", "prompt tokens", "passages cut", "status"],
            rows,
            numeric_from=2,
            cls="summary",
            roles=roles,
        ),
        "<h2>Answers</h2>",
        '<div id="questions">',
        _question({rec["generator"]: rec for rec in records}, names) if records else "",
        "</div>",
    ]
    return PAGE.format(title=esc(f"rag compare: {question}"), style=STYLE, body="\n".join(body), script=SCRIPT)


def _role(g: dict) -> str:
    family = g.get("family") or ""
    return {"encoder-decoder": "generator", "decoder-only": "generator", "encoder-only": "reader"}.get(family, "")


def _run_table(summary: dict) -> str:
    d, s, st, idx = summary["dataset"], summary["sample"], summary["settings"], summary["index"]
    m, v = summary.get("machine") or {}, summary.get("versions") or {}
    rows = [
        ["dataset", f"{d['name']} ({d['format']}), {d['path']}"],
        [
            "sample",
            f"{s['questions']} of {d['questions']} questions" + (f", seed {s['seed']}" if s.get("limit") else ""),
        ],
        ["retriever", _retriever_text(st)],
        ["passages", f"top {st['passages']} given to each answerer ({st['mode']})"],
        [
            "index",
            f"{idx['documents']} documents, {idx['chunks']} chunks of at most {idx['chunk_tokens']} tokens, "
            f"embedder {idx['embedder']}, {idx['index_type']}",
        ],
        ["decoding", f"{st['decoding']}, at most {st['max_new_tokens']} new tokens"],
        ["CPU", f"{m.get('cpu')}, {m.get('cpus_usable')} usable cores, {m.get('memory_gib')} GiB"],
        ["versions", ", ".join(f"{k} {val}" for k, val in v.items() if val)],
        ["command", summary.get("command") or "-"],
        ["started", f"{summary.get('started')}, took {summary.get('seconds')} s"],
    ]
    return _table(["run", ""], rows, numeric_from=2, cls="run")


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric_from: int = 1,
    cls: str = "",
    roles: Sequence[str] = (),
) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    lines = [f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>']
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            text = esc(cell)
            if j == 0 and i < len(roles) and roles[i]:
                text += f' <span class="role">{esc(roles[i])}</span>'
            cells.append(f'<td class="{"num" if j >= numeric_from else ""}">{text}</td>')
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _controls(names: Sequence[str]) -> str:
    options = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)
    boxes = "".join(
        f'<label><input type="checkbox" name="filter" value="{key}"> {esc(label)}</label> '
        for key, label in FILTERS.items()
    )
    return (
        f'<form id="controls" hidden>Show only: {boxes}<br>Sort by F1 of <select id="sort-a">{options}</select>'
        f' minus <select id="sort-b">{options}</select> <button type="button" id="sort">sort</button>'
        ' <button type="button" id="unsort">original order</button> <span id="shown"></span></form>'
    )


def _question(answers: dict[str, dict], names: Sequence[str]) -> str:
    """One question: its gold answers, each answerer's answer with F1 and time, the passages."""
    first = next(iter(answers.values()))
    f1s = {n: r.get("f1") for n, r in answers.items() if r.get("f1") is not None}
    texts = {" ".join(str(r.get("answer") or "").lower().split()) for r in answers.values() if not r.get("error")}
    gold_ids = set(first.get("gold_ids") or [])
    retrieved = first.get("retrieved_ids") or []
    missed = bool(gold_ids) and not any(
        doc in gold_ids for doc in retrieved[: max(1, len(first.get("offered_ids") or []))]
    )
    flags = {"disagree": len(texts) > 1, "wrong": bool(f1s) and max(f1s.values()) == 0, "missed": missed}
    data = " ".join(f'data-{k}="{int(v)}"' for k, v in flags.items())
    data += f" data-f1='{esc(json.dumps(f1s))}'"
    rows = []
    for name in names:
        r = answers.get(name)
        if r is None:
            continue
        if r.get("error"):
            answer = f'<span class="error">error: {esc(r["error"])}</span>'
        else:
            answer = esc(r.get("answer")) or "<em>(empty)</em>"
        time_ms = (r.get("timings") or {}).get("generation_ms")
        f1 = r.get("f1")
        source = f' <span class="cite">from {esc(r["source"])}</span>' if r.get("source") else ""
        rows.append(
            f'<tr><td>{esc(name)}</td><td class="answer">{answer}{source}</td>'
            f'<td class="num">{"-" if f1 is None else f"{f1:.2f}"}</td>'
            f'<td class="num">{"-" if time_ms is None else f"{time_ms:.0f} ms"}</td></tr>'
        )
    gold = " | ".join(esc(a) for a in first.get("answers") or []) or "<em>(none)</em>"
    marks = " ".join(f'<span class="flag">{esc(FILTERS[k])}</span>' for k, v in flags.items() if v)
    return "\n".join(
        [
            f'<section class="question" id="q-{esc(first["question_id"])}" {data}>',
            f"<h3>{esc(first['question'])} {marks}</h3>",
            f'<p class="gold">gold: {gold}</p>',
            '<table class="answers"><thead><tr><th>answerer</th><th>answer</th><th>F1</th><th>time</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>",
            _passages(answers, names, gold_ids),
            "</section>",
        ]
    )


def _passages(answers: dict[str, dict], names: Sequence[str], gold_ids: set[str]) -> str:
    """The passages each answerer was given (collapsed), with their citations, what the budget did
    to each, a gold document marked, and a pointed or extractive answer highlighted where it is."""
    parts = []
    groups: dict[str, list[str]] = {}  # answerers given the same passages, with nothing to highlight, share one fold
    for name in names:
        r = answers.get(name)
        if r is not None and r.get("passages"):
            key = json.dumps(r["passages"], sort_keys=True) if not r.get("span") else f"span:{name}"
            groups.setdefault(key, []).append(name)
    for group in groups.values():
        r = answers[group[0]]
        span = r.get("span") or {}
        items = []
        for i, p in enumerate(r["passages"]):
            text = p.get("text") or ""
            if span.get("passage") == i and 0 <= span.get("start", -1) <= span.get("end", -1) <= len(text):
                shown = (
                    esc(text[: span["start"]])
                    + f"<mark>{esc(text[span['start'] : span['end']])}</mark>"
                    + esc(text[span["end"] :])
                )
            else:
                shown = esc(text)
            doc = p.get("citation", "").rsplit(":", 1)[0]
            gold = ' <span class="hit">gold document</span>' if doc in gold_ids else ""
            status = p.get("status")
            items.append(
                f'<li><span class="cite">[{i + 1}] {esc(p.get("citation"))}</span>'
                f"{f' <span class=budget>{esc(status)}</span>' if status else ''}{gold}"
                f"<blockquote>{shown}</blockquote></li>"
            )
        parts.append(
            f"<details><summary>passages given to {esc(', '.join(group))} ({len(items)})</summary>"
            f"<ol>{''.join(items)}</ol></details>"
        )
    return "\n".join(parts)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="rag report">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
<script>{script}</script>
</body>
</html>
"""

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 78em; padding: 0 1em; color: #222; overflow-wrap: anywhere; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1em; margin: 0 0 .3em; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #ccc; padding: .2em .5em; vertical-align: top; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.run td:first-child { font-weight: 600; } .role { color: #555; font-size: .85em; border: 1px solid #aaa; border-radius: 3px; padding: 0 .3em; }
.plots img { max-width: 48%; margin: .3em; border: 1px solid #ddd; }
section.question { border-top: 2px solid #ddd; padding: .6em 0; } section.question[hidden] { display: none; }
.gold { color: #155724; } .error { color: #a00; } .flag { font-size: .8em; background: #fff3cd; padding: 0 .3em; margin-left: .3em; }
.cite { color: #555; font-family: ui-monospace, monospace; font-size: .9em; } .budget { font-size: .8em; background: #eee; padding: 0 .3em; }
.hit { font-size: .8em; background: #d4edda; padding: 0 .3em; } mark { background: #ffe066; }
blockquote { margin: .2em 0 .6em 1em; white-space: pre-wrap; color: #333; } td.answer { max-width: 40em; white-space: pre-wrap; }
#controls { background: #f7f7f7; padding: .5em; border: 1px solid #ddd; }
"""

SCRIPT = """
(function () {
  var form = document.getElementById("controls");
  if (!form) return;
  form.hidden = false;
  var box = document.getElementById("questions");
  var sections = Array.prototype.slice.call(box.querySelectorAll("section.question"));
  function apply() {
    var wanted = Array.prototype.slice.call(form.querySelectorAll("input[name=filter]:checked")).map(function (b) { return b.value; });
    var shown = 0;
    sections.forEach(function (s) {
      var keep = wanted.every(function (k) { return s.getAttribute("data-" + k) === "1"; });
      s.hidden = !keep;
      if (keep) shown++;
    });
    document.getElementById("shown").textContent = shown + " of " + sections.length + " shown";
  }
  function diff(s) {
    var f1 = JSON.parse(s.getAttribute("data-f1") || "{}");
    var a = f1[document.getElementById("sort-a").value], b = f1[document.getElementById("sort-b").value];
    return (a === undefined || b === undefined) ? -Infinity : a - b;
  }
  form.addEventListener("change", apply);
  document.getElementById("sort").addEventListener("click", function () {
    sections.slice().sort(function (x, y) { return diff(y) - diff(x); }).forEach(function (s) { box.appendChild(s); });
  });
  document.getElementById("unsort").addEventListener("click", function () {
    sections.forEach(function (s) { box.appendChild(s); });
  });
  var match = /filter=([a-z,]+)/.exec(location.hash);
  if (match) match[1].split(",").forEach(function (k) {
    var b = form.querySelector("input[value='" + k + "']");
    if (b) b.checked = true;
  });
  apply();
})();
"""
