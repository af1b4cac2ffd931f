"""Readers that turn the three benchmark inputs into one in-memory form, `BenchSet`.

- "qa-jsonl": the project's own sets (a qa.jsonl beside a docs/ folder), one gold file per question.
- "squad":    SQuAD v1.1 JSON, used open-book: every paragraph of the file is a document.
- "beir":     a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), retrieval only.

The runner then only needs documents, questions, gold answers and graded gold documents, whatever
the source. Malformed input raises ValueError with a one-line message naming the file and line,
so a bad set fails at load time rather than half-way through a benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rag.documents import Document

FORMATS = ("qa-jsonl", "squad", "beir")
_SUPPORTED = (
    "supported: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/), "
    "a SQuAD v1.1 .json file, or a .jsonl file with question/answer/doc on each line"
)
_QA_TEXT_SUFFIXES = {".md", ".txt"}


@dataclass
class BenchQuestion:
    """One question with its gold answers (first = main answer) and graded gold documents."""

    id: str
    question: str
    answers: list[str]  # gold answer first, then aliases; empty for retrieval-only sets
    gold: dict[str, int]  # doc id -> relevance grade (>0)


@dataclass
class BenchSet:
    """A loaded benchmark set. `Document.path` is the doc id used in each question's `gold`."""

    name: str
    format: str  # "qa-jsonl" | "squad" | "beir"
    documents: list[Document]
    questions: list[BenchQuestion]
    corpus_dir: Path | None  # qa-jsonl: the docs folder to index as a folder; else None


# --- format detection -------------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    """Say which reader fits `path` by looking at its shape, not trusting its name alone."""
    path = Path(path)
    if path.is_dir():
        if (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file():
            return "beir"
    elif path.is_file():
        if path.suffix == ".json" and _looks_like_squad(path):
            return "squad"
        if path.suffix == ".jsonl" and _looks_like_qa_jsonl(path):
            return "qa-jsonl"
    else:
        raise ValueError(f"{path}: no such file or folder; {_SUPPORTED}")
    raise ValueError(f"{path}: not a recognised benchmark set; {_SUPPORTED}")


def _looks_like_squad(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    articles = data.get("data") if isinstance(data, dict) else None
    return (
        isinstance(articles, list)
        and bool(articles)
        and all(isinstance(a, dict) and "paragraphs" in a for a in articles)
    )


def _looks_like_qa_jsonl(path: Path) -> bool:
    """Judge by the first non-blank line: a JSON object with question, answer and doc."""
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    return isinstance(record, dict) and {"question", "answer", "doc"} <= record.keys()
    except (ValueError, UnicodeDecodeError):
        return False
    return False


def load_dataset(path: str | Path, format: str | None = None, *, split: str = "test") -> BenchSet:
    """Load a benchmark set, detecting its format unless given. `split` picks a BEIR qrels file."""
    path = Path(path)
    format = format or detect_format(path)
    if format == "qa-jsonl":
        return load_qa_jsonl(path)
    if format == "squad":
        return load_squad(path)
    if format == "beir":
        return load_beir(path, split=split)
    raise ValueError(f"unknown benchmark format {format!r}; choose one of {', '.join(FORMATS)}")


# --- shared helpers ---------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line number, object) for each non-blank line, failing with file:line."""
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(record, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object")
                yield lineno, record
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None


def _string_field(record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: missing or empty string field {key!r}")
    return value


def _id_field(record: dict, key: str, where: str) -> str:
    """BEIR ids are strings but some dumps write numbers; accept both, store as str."""
    value = record.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string_field(record, key, where)


# --- qa-jsonl (the project's own sets) --------------------------------------------------------


def load_qa_jsonl(path: str | Path) -> BenchSet:
    """Read a qa.jsonl whose documents are the files of the `docs/` folder beside it.

    Each line: {"id", "question", "answer", "aliases" (optional list), "doc" (path relative to
    docs/)}. The index loads the docs folder itself (`corpus_dir`), so `documents` here is only the
    .md/.txt files as UTF-8 text, for information and tests.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    docs_dir = path.parent / "docs"
    if not docs_dir.is_dir():
        raise ValueError(f"{path}: expected the documents in a docs/ folder beside it ({docs_dir})")
    questions: list[BenchQuestion] = []
    seen: set[str] = set()
    for lineno, record in _read_jsonl(path):
        where = f"{path}:{lineno}"
        qid = _id_field(record, "id", where)
        if qid in seen:
            raise ValueError(f"{where}: duplicate question id {qid!r}")
        seen.add(qid)
        aliases = record.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ValueError(f"{where}: 'aliases' must be a list of strings")
        doc = _doc_path(_string_field(record, "doc", where), docs_dir, where)
        answers = _unique([_string_field(record, "answer", where), *aliases])
        questions.append(BenchQuestion(qid, _string_field(record, "question", where), answers, {doc: 1}))
    if not questions:
        raise ValueError(f"{path}: no questions")
    return BenchSet(path.parent.name, "qa-jsonl", _text_files(docs_dir), questions, docs_dir)


def _doc_path(doc: str, docs_dir: Path, where: str) -> str:
    """Normalise `doc` to the POSIX relative path the index uses, and check the file exists."""
    rel = PurePosixPath(doc.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"{where}: 'doc' must be a path inside docs/, got {doc!r}")
    if not (docs_dir / rel).is_file():
        raise ValueError(f"{where}: gold document {doc!r} not found in {docs_dir}")
    return rel.as_posix()


def _text_files(folder: Path) -> list[Document]:
    """The .md/.txt files under `folder` (hidden ones skipped), sorted by relative path."""
    documents = []
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if (
            file.is_file()
            and file.suffix.lower() in _QA_TEXT_SUFFIXES
            and not any(part.startswith(".") for part in rel.parts)
        ):
            text = file.read_text(encoding="utf-8", errors="replace")
            documents.append(Document(path=rel.as_posix(), text=text))
    return documents


def _unique(items: list[str]) -> list[str]:
    """Drop repeats, keeping the first occurrence's position (the gold answer stays first)."""
    return list(dict.fromkeys(items))


# --- SQuAD v1.1 --------------------------------------------------------------------------------


def load_squad(path: str | Path) -> BenchSet:
    """Read SQuAD v1.1 JSON for open-book QA: each paragraph is a document, "<title>/<index>".

    "/" inside a title is replaced by "_" so the id stays one path component; the gold document
    of each question is its own paragraph.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise ValueError(f"{path}: expected a SQuAD v1.1 object with a top-level 'data' list")

    documents: list[Document] = []
    questions: list[BenchQuestion] = []
    titles: set[str] = set()
    for a, article in enumerate(articles):
        where = f"{path}: data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise ValueError(f"{where}: expected an article with a 'paragraphs' list")
        title = _string_field(article, "title", where).replace("/", "_")
        if title in titles:
            raise ValueError(f"{where}: duplicate article title {title!r} (doc ids would clash)")
        titles.add(title)
        for p, paragraph in enumerate(article["paragraphs"]):
            where_p = f"{where}.paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise ValueError(f"{where_p}: expected an object")
            doc_id = f"{title}/{p}"
            documents.append(Document(doc_id, _string_field(paragraph, "context", where_p)))
            for q, qa in enumerate(paragraph.get("qas", [])):
                questions.append(_squad_question(qa, doc_id, f"{where_p}.qas[{q}]"))
    return BenchSet(path.stem, "squad", documents, questions, None)


def _squad_question(qa: object, doc_id: str, where: str) -> BenchQuestion:
    if not isinstance(qa, dict):
        raise ValueError(f"{where}: expected an object")
    raw = qa.get("answers")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: missing or empty 'answers' list")
    if not all(isinstance(ans, dict) and isinstance(ans.get("text"), str) for ans in raw):
        raise ValueError(f"{where}: each answer must be an object with a 'text' string")
    return BenchQuestion(
        id=_string_field(qa, "id", where),
        question=_string_field(qa, "question", where),
        answers=_unique([ans["text"] for ans in raw]),
        gold={doc_id: 1},
    )


# --- BEIR --------------------------------------------------------------------------------------


def load_beir(path: str | Path, split: str = "test") -> BenchSet:
    """Read a BEIR folder for retrieval-only evaluation (questions have no answers).

    As in BEIR, a document's text is its title and body together, and only queries that have
    judgements in qrels/<split>.tsv are questions. Judgements with grade <= 0 are left out of
    `gold` (they add nothing to recall, MRR or nDCG), but their query still counts, so averages
    match BEIR's.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: expected a BEIR folder with corpus.jsonl, queries.jsonl and qrels/")
    documents: list[Document] = []
    doc_ids: set[str] = set()
    corpus = path / "corpus.jsonl"
    for lineno, record in _read_jsonl(corpus):
        where = f"{corpus}:{lineno}"
        doc_id = _id_field(record, "_id", where)
        if doc_id in doc_ids:
            raise ValueError(f"{where}: duplicate document id {doc_id!r}")
        doc_ids.add(doc_id)
        title = record.get("title") or ""
        body = record.get("text") or ""
        if not isinstance(title, str) or not isinstance(body, str):
            raise ValueError(f"{where}: 'title' and 'text' must be strings")
        text = f"{title}\n\n{body}" if title.strip() else body
        documents.append(Document(doc_id, text))

    qrels = _read_qrels(path / "qrels" / f"{split}.tsv")

    questions: list[BenchQuestion] = []
    queries = path / "queries.jsonl"
    for lineno, record in _read_jsonl(queries):
        where = f"{queries}:{lineno}"
        qid = _id_field(record, "_id", where)
        if qid in qrels:
            questions.append(BenchQuestion(qid, _string_field(record, "text", where), [], {}))
    missing = qrels.keys() - {q.id for q in questions}
    if missing:
        example = sorted(missing)[0]
        raise ValueError(f"{path / 'qrels' / f'{split}.tsv'}: query {example!r} is not in {queries}")
    for question in questions:
        question.gold = {doc: grade for doc, grade in qrels[question.id].items() if grade > 0}
    return BenchSet(path.name, "beir", documents, questions, None)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read `query-id <tab> corpus-id <tab> score` lines (CRLF or LF, header optional)."""
    if not path.is_file():
        found = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise ValueError(f"{path}: qrels file not found (splits present: {', '.join(found) or 'none'})")
    qrels: dict[str, dict[str, int]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.strip().split("\t")
        if fields == [""] or (lineno == 1 and fields[0] == "query-id"):
            continue
        if len(fields) != 3:
            raise ValueError(f"{path}:{lineno}: expected 3 tab-separated fields, got {len(fields)}")
        qid, doc_id, score = fields
        try:
            grade = int(score)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: score {score!r} is not an integer") from None
        qrels.setdefault(qid, {})[doc_id] = grade
    return qrels
