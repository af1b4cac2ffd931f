"""What every answerer returns, and how loading or budgeting one fails: the types a reader
(encoder-only, points at a span) and a generator (encoder-decoder or decoder-only, writes) share.

Below both roles, so neither imports the other: `ask`, `compare` and `bench` treat a reader and
a generator alike through these (and `rag.answerers` resolves a name to either). Pure data, no
torch: importing this stays instant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rag.documents import Passage
from rag.errors import RagError

ENCODER_DECODER = "encoder-decoder"
ENCODER_ONLY = "encoder-only"  # a reader: points at a span instead of generating
DECODER_ONLY = "decoder-only"

WHOLE = "whole"
CUT = "cut"
DROPPED = "dropped"


class ModelNotAvailable(RagError):
    """The model cannot be loaded here and now. `str(e)` is one line meant for the terminal."""


class BudgetError(RagError, ValueError):
    """The prompt cannot fit the model's window even with no passages at all (one line)."""


class ModeNotSupported(BudgetError):
    """This generator cannot answer in the mode asked for (e.g. --fid on a decoder-only model);
    handled like a budget error: one line, the other generators still run."""


def fid_refusal(name: str, family: str) -> ModeNotSupported | None:
    """Why `name` cannot answer with --fid, or None if it can: the one rule and its line."""
    if family == ENCODER_DECODER:
        return None
    return ModeNotSupported(f"{name} is {family}: --fid needs an encoder-decoder model (one encoder pass per passage)")


@dataclass
class BudgetItem:
    """One retrieved passage and what the context budget did with it.

    `citation` is the retrieved passage's own citation (its full span), so it can be matched
    with the retriever's output even when the passage was cut; the cut span given to the
    model is in `Answer.passages`.
    """

    citation: str
    rank: int
    status: str  # WHOLE | CUT | DROPPED
    tokens: int  # prompt tokens this passage added (0 if dropped)


@dataclass
class Span:
    """Where an extractive answer came from: `passage` indexes `Answer.passages`, `start` and
    `end` are character offsets in that passage's text, `citation` is that passage's."""

    passage: int
    start: int
    end: int
    citation: str


@dataclass
class Answer:
    """A generated answer with everything needed to cite, audit and time it."""

    question: str
    text: str
    generator: str
    family: str
    passages: list[Passage]
    budget: list[BudgetItem]
    prompt_tokens: int
    output_tokens: int
    timings: dict[str, float] = field(default_factory=dict)
    extractive: bool = False  # decoding was constrained to a span of the passages
    fid: bool = False  # Fusion-in-Decoder: each passage encoded on its own (budget tokens are per passage)
    runtime: str = ""  # what ran the model ("transformers"), never to be confused with its family
    dtype: str = ""  # what its weights computed in ("float32", "bfloat16")
    dtype_reason: str = ""  # why that dtype on this CPU (`rag.cpu.choose_dtype`)
    span: Span | None = None  # extractive: where the answer is (None: no span was produced)
    found: bool | None = None  # a reader: False when it found no span worth pointing at ("not in the documents")
    score: float | None = None  # a reader: the best span's score above the no-answer score
    candidates: list[dict] = field(default_factory=list)  # a reader: the best spans, best first
    questions_trained: int | None = None  # a model rag trained: how many questions it learnt from

    @property
    def source(self) -> str | None:
        """The citation of the passage holding an extractive answer's span."""
        return self.span.citation if self.span is not None else None

    @property
    def citations(self) -> list[str]:
        """`path:lines` of the passages the model was given (cut passages with their cut span)."""
        return [p.citation for p in self.passages]

    @property
    def passages_cut(self) -> int:
        """How many retrieved passages the budget cut or dropped."""
        return sum(1 for item in self.budget if item.status != WHOLE)

    def to_dict(self) -> dict:
        """JSON-ready form; passages carry their citation."""
        return {
            "question": self.question,
            "text": self.text,
            "generator": self.generator,
            "family": self.family,
            "citations": self.citations,
            "passages": [p.to_dict() for p in self.passages],
            "budget": [asdict(item) for item in self.budget],
            "passages_cut": self.passages_cut,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "timings": dict(self.timings),
            "extractive": self.extractive,
            "fid": self.fid,
            "runtime": self.runtime,
            "dtype": self.dtype,
            "dtype_reason": self.dtype_reason,
            "span": asdict(self.span) if self.span is not None else None,
            "questions_trained": self.questions_trained,
            **(
                {"found": self.found, "score": self.score, "candidates": self.candidates}
                if self.found is not None
                else {}
            ),
        }
