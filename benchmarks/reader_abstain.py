"""How often the reader says "Not in the documents." when the answer is in no document.

    .venv/bin/python benchmarks/reader_abstain.py [READER]

Thirty questions about Python's standard library, asked of SQuAD part A's 913 paragraphs
(Wikipedia articles on oil crises, Normans, Super Bowl 50...): no passage holds any answer, so
every pointed answer is wrong and every abstention right. Beside them, as many held-in SQuAD
questions (answerable, same index, hybrid top 5), to show what the margin costs there.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STDLIB = [
    "What does os.path.join return?",
    "Which module provides the defaultdict class?",
    "What exception does int('x') raise?",
    "How do you read a file line by line in Python?",
    "What does the json.dumps indent argument do?",
    "Which function sorts a list in place?",
    "What does functools.lru_cache do?",
    "How do you create a virtual environment with venv?",
    "What is the default encoding of open() on Linux?",
    "Which module parses command-line arguments?",
    "What does itertools.chain do?",
    "How do you start a thread with the threading module?",
    "What does pathlib.Path.glob return?",
    "Which exception does dict access raise for a missing key?",
    "What does the subprocess.run check argument do?",
    "How do you compute a SHA-256 hash in Python?",
    "What does re.compile return?",
    "Which module formats dates with strftime?",
    "What does collections.Counter.most_common return?",
    "What is the difference between a list and a tuple?",
    "How do you remove a directory tree with shutil?",
    "What does time.perf_counter measure?",
    "Which decorator makes a dataclass immutable?",
    "What does enumerate yield?",
    "How does asyncio.gather run coroutines?",
    "What does the with statement call on exit?",
    "Which module reads CSV files?",
    "What does sys.argv hold?",
    "What does random.seed do?",
    "How do you pretty-print a nested dictionary?",
]


def main() -> None:
    reader_name = sys.argv[1] if len(sys.argv) > 1 else "minilm-reader"
    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.cpu import this_cpu
    from rag.readers.loading import load_reader
    from rag.retrieve import Retriever
    from rag.train.run_reader import held_in_examples

    data, held = held_in_examples(reader_name)
    answerable = random.Random(0).sample(held, min(len(STDLIB), len(held)))
    _, index, _ = dataset_index(BenchConfig(dataset=data))
    reader = load_reader(reader_name, threads=2)
    rows = []
    for kind, questions in (
        ("stdlib (no answer in any document)", STDLIB),
        ("held-in SQuAD (answerable)", [e.question for e in answerable]),
    ):
        found = index.search_many(questions, 5, retriever=Retriever("hybrid"))
        abstained = sum(not reader.read(q, [p.text for p in passages]).found for q, passages in zip(questions, found))
        rows.append((kind, len(questions), abstained))
    print(f"CPU: {this_cpu().describe()}; reader {reader_name}, margin {reader.margin:.3f}")
    print("| questions | n | abstained |")
    print("|---|---:|---:|")
    for kind, n, abstained in rows:
        print(f"| {kind} | {n} | {abstained} ({abstained / n:.0%}) |")


if __name__ == "__main__":
    main()
