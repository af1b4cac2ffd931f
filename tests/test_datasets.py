"""The three benchmark readers on small fixtures, format detection, errors, and the real sets."""

import json
from pathlib import Path

import pytest

from rag.bench.datasets import BenchQuestion, detect_format, load_dataset
from rag.documents import Document

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


# --- fixtures ------------------------------------------------------------------------------


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def qa_set(tmp_path: Path) -> Path:
    docs = tmp_path / "mini" / "docs"
    (docs / "models").mkdir(parents=True)
    (docs / "bert.md").write_text("# BERT\nBERT is an encoder-only transformer.\n", encoding="utf-8")
    (docs / "models" / "t5.txt").write_text("T5 is an encoder-decoder model.", encoding="utf-8")
    (docs / "notes.pdf").write_bytes(b"%PDF-1.4 not read by this reader")
    return write_jsonl(
        tmp_path / "mini" / "qa.jsonl",
        [
            {
                "id": "q001",
                "question": "What kind of model is BERT?",
                "answer": "encoder-only",
                "aliases": ["encoder only", "encoder-only"],
                "doc": "bert.md",
            },
            {
                "id": "q002",
                "question": "What kind of model is T5?",
                "answer": "encoder-decoder",
                "doc": "./models/t5.txt",
            },
        ],
    )


def squad_data() -> dict:
    return {
        "version": "1.1",
        "data": [
            {
                "title": "Super_Bowl_50",
                "paragraphs": [
                    {
                        "context": "The Denver Broncos won Super Bowl 50.",
                        "qas": [
                            {
                                "id": "s1",
                                "question": "Who won Super Bowl 50?",
                                "answers": [
                                    {"answer_start": 4, "text": "Denver Broncos"},
                                    {"answer_start": 4, "text": "Denver Broncos"},
                                    {"answer_start": 0, "text": "The Denver Broncos"},
                                ],
                            }
                        ],
                    },
                    {
                        "context": "It was played in Santa Clara.",
                        "qas": [
                            {
                                "id": "s2",
                                "question": "Where was it played?",
                                "answers": [{"answer_start": 17, "text": "Santa Clara"}],
                            }
                        ],
                    },
                ],
            },
            {
                "title": "AC/DC",
                "paragraphs": [
                    {
                        "context": "AC/DC is a rock band from Sydney.",
                        "qas": [
                            {
                                "id": "s3",
                                "question": "Where is AC/DC from?",
                                "answers": [{"answer_start": 26, "text": "Sydney"}],
                            },
                            {
                                "id": "s4",
                                "question": "What is AC/DC?",
                                "answers": [{"answer_start": 11, "text": "rock band"}],
                            },
                        ],
                    },
                ],
            },
        ],
    }


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    path = tmp_path / "mini-squad.json"
    path.write_text(json.dumps(squad_data()), encoding="utf-8")
    return path


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "minibeir"
    write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever.", "metadata": {}},
            {"_id": "d2", "title": "", "text": "Untitled abstract."},
            {"_id": "d3", "title": "Ibuprofen", "text": "Ibuprofen is an NSAID."},
        ],
    )
    write_jsonl(
        root / "queries.jsonl",
        [
            {"_id": "1", "text": "Aspirin lowers fever."},
            {"_id": "2", "text": "A query with no judgements."},
            {"_id": "3", "text": "NSAIDs include ibuprofen."},
            {"_id": "4", "text": "Only judged not relevant."},
        ],
    )
    (root / "qrels").mkdir()
    # BEIR publishes qrels with CRLF line endings; graded scores, and a grade-0 judgement
    (root / "qrels" / "test.tsv").write_bytes(
        b"query-id\tcorpus-id\tscore\r\n1\td1\t2\r\n1\td2\t1\r\n3\td3\t1\r\n3\td2\t0\r\n4\td1\t0\r\n"
    )
    return root


# --- qa-jsonl ------------------------------------------------------------------------------


def test_qa_jsonl(qa_set: Path):
    bench = load_dataset(qa_set)
    assert (bench.name, bench.format) == ("mini", "qa-jsonl")
    assert bench.corpus_dir == qa_set.parent / "docs"
    # .md/.txt files only, POSIX relative paths, sorted
    assert bench.documents == [
        Document("bert.md", "# BERT\nBERT is an encoder-only transformer.\n"),
        Document("models/t5.txt", "T5 is an encoder-decoder model."),
    ]
    assert bench.questions == [
        BenchQuestion("q001", "What kind of model is BERT?", ["encoder-only", "encoder only"], {"bert.md": 1}),
        BenchQuestion("q002", "What kind of model is T5?", ["encoder-decoder"], {"models/t5.txt": 1}),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        (
            '{"id": "q9", "question": "Q?", "answer": "A", "doc": "missing.md"}',
            r"qa\.jsonl:2: gold document 'missing\.md' not found",
        ),
        ('{"id": "q9", "question": "Q?", "doc": "bert.md"}', r"qa\.jsonl:2: missing or empty string field 'answer'"),
        (
            '{"id": "q001", "question": "Q?", "answer": "A", "doc": "bert.md"}',
            r"qa\.jsonl:2: duplicate question id 'q001'",
        ),
        (
            '{"id": "q9", "question": "Q?", "answer": "A", "doc": "../qa.jsonl"}',
            r"qa\.jsonl:2: 'doc' must be a path inside docs/",
        ),
        (
            '{"id": "q9", "question": "Q?", "answer": "A", "aliases": "x", "doc": "bert.md"}',
            r"qa\.jsonl:2: 'aliases' must be a list of strings",
        ),
        ('{"id": "q9", "question": "Q?"', r"qa\.jsonl:2: not valid JSON"),
        ('["not", "an", "object"]', r"qa\.jsonl:2: expected a JSON object"),
    ],
)
def test_qa_jsonl_errors_name_file_and_line(qa_set: Path, line: str, message: str):
    first = qa_set.read_text(encoding="utf-8").splitlines()[0]
    qa_set.write_text(first + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_dataset(qa_set, format="qa-jsonl")


def test_qa_jsonl_needs_docs_folder(tmp_path: Path):
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Q?", "answer": "A", "doc": "a.md"}])
    with pytest.raises(ValueError, match="docs/ folder"):
        load_dataset(qa)


# --- SQuAD ---------------------------------------------------------------------------------


def test_squad(squad_file: Path):
    bench = load_dataset(squad_file)
    assert (bench.name, bench.format, bench.corpus_dir) == ("mini-squad", "squad", None)
    assert bench.documents == [
        Document("Super_Bowl_50/0", "The Denver Broncos won Super Bowl 50."),
        Document("Super_Bowl_50/1", "It was played in Santa Clara."),
        Document("AC_DC/0", "AC/DC is a rock band from Sydney."),  # "/" in title made safe
    ]
    assert [q.id for q in bench.questions] == ["s1", "s2", "s3", "s4"]
    s1 = bench.questions[0]
    assert s1.question == "Who won Super Bowl 50?"
    assert s1.answers == ["Denver Broncos", "The Denver Broncos"]  # deduplicated, order kept
    assert s1.gold == {"Super_Bowl_50/0": 1}
    assert bench.questions[1].gold == {"Super_Bowl_50/1": 1}
    assert bench.questions[3].gold == {"AC_DC/0": 1}


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (
            lambda d: d["data"][1]["paragraphs"][0]["qas"][0].pop("answers"),
            r"data\[1\]\.paragraphs\[0\]\.qas\[0\]: missing or empty 'answers'",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][1].pop("context"),
            r"data\[0\]\.paragraphs\[1\]: missing or empty string field 'context'",
        ),
        (lambda d: d["data"][1].pop("paragraphs"), r"data\[1\]: expected an article"),
        (lambda d: d["data"][1].update(title="Super_Bowl_50"), r"duplicate article title"),
    ],
)
def test_squad_errors_name_the_place(squad_file: Path, corrupt, message: str):
    data = squad_data()
    corrupt(data)
    squad_file.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_dataset(squad_file, format="squad")


def test_squad_invalid_json_names_line(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n{"title": "x",\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json:3: not valid JSON"):
        load_dataset(path, format="squad")


# --- BEIR ----------------------------------------------------------------------------------


def test_beir(beir_dir: Path):
    bench = load_dataset(beir_dir)
    assert (bench.name, bench.format, bench.corpus_dir) == ("minibeir", "beir", None)
    assert bench.documents == [
        Document("d1", "Aspirin\n\nAspirin reduces fever."),  # title and text together
        Document("d2", "Untitled abstract."),
        Document("d3", "Ibuprofen\n\nIbuprofen is an NSAID."),
    ]
    # query 2 has no qrels: not a question; query 4 only has a grade-0 judgement: kept (BEIR
    # averages over it) with empty gold; grades read from the score, no "\r" left over
    assert bench.questions == [
        BenchQuestion("1", "Aspirin lowers fever.", [], {"d1": 2, "d2": 1}),
        BenchQuestion("3", "NSAIDs include ibuprofen.", [], {"d3": 1}),
        BenchQuestion("4", "Only judged not relevant.", [], {}),
    ]


def test_beir_other_split(beir_dir: Path):
    (beir_dir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n2\td3\t1\n")
    bench = load_dataset(beir_dir, split="dev")
    assert [(q.id, q.gold) for q in bench.questions] == [("2", {"d3": 1})]
    with pytest.raises(ValueError, match=r"qrels file not found \(splits present: dev, test\)"):
        load_dataset(beir_dir, split="train")


@pytest.mark.parametrize(
    "file, content, message",
    [
        (
            "qrels/test.tsv",
            b"query-id\tcorpus-id\tscore\r\n1\td1\r\n",
            r"test\.tsv:2: expected 3 tab-separated fields, got 2",
        ),
        (
            "qrels/test.tsv",
            b"query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n1\td2\thigh\r\n",
            r"test\.tsv:3: score 'high' is not an integer",
        ),
        (
            "qrels/test.tsv",
            b"query-id\tcorpus-id\tscore\r\n99\td1\t1\r\n",
            r"test\.tsv: query '99' is not in .*queries\.jsonl",
        ),
        (
            "corpus.jsonl",
            b'{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n',
            r"corpus\.jsonl:2: duplicate document id 'd1'",
        ),
        (
            "corpus.jsonl",
            b'{"_id": "d1", "text": "a"}\n{"text": "b"}\n',
            r"corpus\.jsonl:2: missing or empty string field '_id'",
        ),
        (
            "queries.jsonl",
            b'{"_id": "1", "text": "ok"}\n\n{"_id": "3", "text": }\n',
            r"queries\.jsonl:3: not valid JSON",
        ),
    ],
)
def test_beir_errors_name_file_and_line(beir_dir: Path, file: str, content: bytes, message: str):
    (beir_dir / file).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_dataset(beir_dir, format="beir")


# --- format detection ----------------------------------------------------------------------


def test_detect_format(qa_set: Path, squad_file: Path, beir_dir: Path):
    assert detect_format(qa_set) == "qa-jsonl"
    assert detect_format(squad_file) == "squad"
    assert detect_format(beir_dir) == "beir"
    assert detect_format(str(beir_dir)) == "beir"


@pytest.mark.parametrize(
    "name, content",
    [
        ("notes.txt", "hello"),
        ("other.json", '{"data": [{"title": "no paragraphs"}]}'),
        ("list.json", "[1, 2]"),
        ("broken.json", "{not json"),
        ("records.jsonl", '{"text": "no question here"}\n'),
        ("empty.jsonl", ""),
    ],
)
def test_detect_format_rejects_unknown_files(tmp_path: Path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        detect_format(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and "BEIR" in message and "SQuAD" in message


def test_detect_format_rejects_plain_folder_and_missing_path(tmp_path: Path):
    with pytest.raises(ValueError, match="not a recognised benchmark set"):
        detect_format(tmp_path)
    with pytest.raises(ValueError, match="no such file or folder"):
        detect_format(tmp_path / "nope.jsonl")


def test_unknown_format_name(squad_file: Path):
    with pytest.raises(ValueError, match="unknown benchmark format 'csv'"):
        load_dataset(squad_file, format="csv")


# --- the real sets (read in place from ../shared/datasets, skipped where absent) ------------


def test_real_squad_part_a():
    path = SHARED_DATASETS / "squad" / "dev-v1.1-part-a.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert detect_format(path) == "squad"
    bench = load_dataset(path)
    assert len(bench.documents) == 913
    assert len(bench.questions) == 4961
    doc_ids = {d.path for d in bench.documents}
    assert len(doc_ids) == 913
    assert all(len(q.gold) == 1 and set(q.gold) <= doc_ids for q in bench.questions)
    assert all(q.answers for q in bench.questions)
    assert bench.documents[0].path == "Super_Bowl_50/0"


def test_real_scifact():
    path = SHARED_DATASETS / "scifact"
    if not (path / "corpus.jsonl").is_file():
        pytest.skip(f"{path} not present")
    assert detect_format(path) == "beir"
    bench = load_dataset(path)
    assert len(bench.documents) == 5183
    assert len(bench.questions) == 300
    assert sum(len(q.gold) for q in bench.questions) == 339  # judgements, every score 1
    assert all(set(q.gold.values()) == {1} and q.answers == [] for q in bench.questions)
