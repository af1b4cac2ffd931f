"""`rag train generator`: the encoder-decoder and decoder-only families trained from MiniLM on
the reader's data, split, loop and checkpoints; each adds only its model, features and loss.

Each question becomes one example: its gold paragraph in the prompt `question [SEP] passage`
(tokenised as `rag.generators.prompts.QuestionPassagePrompt` renders it at answer time, cut to
`max_input` tokens around the answer where longer), and the answer's tokens then [SEP] as the
target. The loss is taken on the answer's tokens only, and the LM head (a 30,522-word softmax,
as costly as the body over a whole prompt) is computed only there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.generators.base import DECODER_ONLY, ENCODER_DECODER
from rag.train.checkpoints import CHECKPOINT_SECONDS, MODEL_DIR
from rag.train.data import Example
from rag.train.loop import open_run, train_loop

FAMILIES = (ENCODER_DECODER, DECODER_ONLY)
ATTENTIONS = ("prefix", "causal")


@dataclass
class GenSettings:
    """What a generator's training run depends on; a resumed run must have the same (checked)."""

    family: str = ENCODER_DECODER
    attention: str = "prefix"  # decoder-only: "prefix" (UniLM) or "causal"; "" for the encoder-decoder
    base: str = "all-MiniLM-L6-v2"
    epochs: float = 1.0
    lr: float = 1e-4
    new_lr: float = 1e-3  # the new weights' (cross-attention, the LM head's transform) peak rate
    batch_size: int = 16
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_input: int = 256
    max_answer: int = 32
    seed: int = 0
    data: str = ""
    data_sha256: str = ""
    held_in: list[str] = field(default_factory=list)
    cooldown: dict | None = None

    def key(self) -> dict:
        key = asdict(self)
        if key["cooldown"] is None:
            key.pop("cooldown")
        return key


@dataclass
class GenExample:
    """One training example: the prompt's ids and the target's (the answer's, then [SEP])."""

    prompt: list[int]
    target: list[int]
    question: int  # index of its Example

    def __len__(self) -> int:
        return len(self.prompt) + len(self.target)


@dataclass
class GenResult:
    folder: Path
    steps: int
    seconds: float
    examples_per_second: float
    examples: int
    resumed_from: int = 0


def _cut_passage(tokenizer, e: Example, room: int) -> str:
    """The passage, or where its tokens exceed `room`, a window of them around the answer."""
    enc = tokenizer(e.context, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = enc["offset_mapping"]
    if len(offsets) <= room:
        return e.context
    first = next((i for i, (s, t) in enumerate(offsets) if t > e.answer_start), 0)
    end_char = e.answer_start + len(e.answer)
    last = next((i for i, (s, t) in enumerate(offsets) if t >= end_char), len(offsets) - 1)
    span = last - first + 1
    lo = max(0, min(first - (room - span) // 2, len(offsets) - room))
    hi = min(len(offsets), lo + room)
    return e.context[offsets[lo][0] : offsets[hi - 1][1]]


def features(tokenizer, examples: Sequence[Example], settings: GenSettings) -> list[GenExample]:
    """Each example's prompt and target ids, as the trained model will see them when it answers."""
    from rag.generators.prompts import QuestionPassagePrompt

    render = QuestionPassagePrompt()
    sep = tokenizer.sep_token_id
    out = []
    for i, e in enumerate(examples):
        question_ids = tokenizer.encode(e.question, add_special_tokens=False)
        room = max(16, settings.max_input - len(question_ids) - 3)
        passage = _cut_passage(tokenizer, e, room)
        prompt = tokenizer.encode(render(e.question, [passage]), add_special_tokens=True)[: settings.max_input]
        target = tokenizer.encode(e.answer, add_special_tokens=False)[: settings.max_answer - 1] + [sep]
        out.append(GenExample(prompt, target, i))
    return out


def new_weight_names(model, family: str) -> set[str]:
    """Parameters that start untrained: cross-attention and the LM head's transform and bias."""
    names = set()
    for name, _ in model.named_parameters():
        if ".crossattention." in name or name.startswith("cls."):
            names.add(name)
    return names


def train(
    examples: Sequence[Example],
    out: Path,
    settings: GenSettings,
    *,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop_after: int | None = None,
    curve: Sequence[int] = (),
    at_point: Callable[[int, dict, object, object], None] | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> GenResult:
    """Train (or resume) a generator of `settings.family` into `out`; `curve` and `at_point` as for
    the reader (`rag.train.reader.train`), counting questions (one example each)."""
    from rag.generators.minilm import init_cross_attention, model_args, model_class
    from rag.train.reader import base_folder

    cls = model_class(settings.family, settings.attention)
    run = open_run(out, settings, base_folder(settings.base), cls, threads, say, device, **model_args(settings.family))
    tokenizer, model = run.tokenizer, run.model
    config = model.config
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.eos_token_id = tokenizer.sep_token_id
    config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.decoder_start_token_id = tokenizer.cls_token_id
    model.generation_config.eos_token_id = tokenizer.sep_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    config.rag_attention = settings.attention if settings.family == DECODER_ONLY else ""
    if run.state is None and settings.family == ENCODER_DECODER:
        say(f"cross-attention of {init_cross_attention(model)} layers initialised from their self-attention")
    data = features(tokenizer, examples, settings)
    batch_loss = make_batch_loss(model, tokenizer, settings, data)

    from rag.train.reader import questions_step

    points = {}
    if at_point is not None:
        for n in sorted(set(curve)):
            step = questions_step(len(data), len(examples), settings, n)
            if step <= max(1, int(-(-len(data) // settings.batch_size) * settings.epochs)):
                points[step] = n

    def at_milestone(step: int, clock: dict) -> None:
        at_point(points[step], {**clock, "step": step}, model, tokenizer)

    finish_step = None
    if settings.cooldown:
        finish_step = questions_step(len(data), len(examples), settings, settings.cooldown["questions"])
    new = new_weight_names(model, settings.family)
    result = train_loop(
        run,
        settings,
        lengths=[len(g) for g in data],
        fingerprint=fingerprint(data),
        batch_loss=batch_loss,
        mismatch="examples than these (the data or the lengths changed)",
        rate="examples_per_s",
        progress=progress,
        checkpoint_seconds=checkpoint_seconds,
        stop_after=stop_after,
        milestones=sorted(points),
        at_milestone=at_milestone if points else None,
        finish_step=finish_step,
        lr_scales={name: settings.new_lr / settings.lr for name in new},
        say=say,
    )
    return GenResult(
        out / MODEL_DIR,
        result.steps,
        result.seconds,
        result.seen / max(result.seconds, 1e-9),
        len(data),
        result.resumed_from,
    )


def make_batch_loss(model, tokenizer, settings: GenSettings, data: Sequence[GenExample]) -> Callable:
    """`batch_loss(ids)` for the loop: (the mean loss over the answers' tokens, examples)."""
    import torch

    from rag.generators.minilm import open_mask, prefix_mask
    from rag.train.device import device_of

    pad = tokenizer.pad_token_id or 0
    device = device_of(model)

    def padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), pad, dtype=torch.long)
        keep = torch.zeros_like(ids)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            keep[b, : len(r)] = 1
        return ids.to(device), keep.to(device)

    def head_loss(hidden, batch: list[GenExample], cols: list[int]):
        rows = [b for b, g in enumerate(batch) for _ in g.target]
        logits = model.cls(hidden[rows, cols])  # the LM head only where the loss is taken
        return torch.nn.functional.cross_entropy(
            logits, torch.tensor([t for g in batch for t in g.target], device=device)
        )

    def encoder_decoder_loss(batch: list[GenExample]):
        src, src_keep = padded([g.prompt for g in batch])
        states = model.bert(input_ids=src, attention_mask=open_mask(src_keep), use_cache=False).last_hidden_state
        tgt, tgt_keep = padded([[tokenizer.cls_token_id] + g.target[:-1] for g in batch])
        hidden = model.bert(
            input_ids=tgt,
            attention_mask=tgt_keep,
            encoder_hidden_states=states,
            encoder_attention_mask=src_keep,
            use_cache=False,
        ).last_hidden_state
        return head_loss(hidden, batch, [j for g in batch for j in range(len(g.target))])

    def decoder_only_loss(batch: list[GenExample]):
        ids, keep = padded([g.prompt + g.target[:-1] for g in batch])
        mask = prefix_mask(keep, [len(g.prompt) for g in batch]) if settings.attention == "prefix" else keep
        hidden = model.bert(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        return head_loss(hidden, batch, [len(g.prompt) - 1 + j for g in batch for j in range(len(g.target))])

    loss_of = encoder_decoder_loss if settings.family == ENCODER_DECODER else decoder_only_loss

    def batch_loss(ids: list[int]):
        batch = [data[i] for i in ids]
        return loss_of(batch), len(batch)

    return batch_loss


def fingerprint(data: Sequence[GenExample]) -> str:
    """A hash of every example's ids: a resumed run must replay the same batches."""
    import hashlib
    import json

    h = hashlib.sha256()
    for g in data:
        h.update(json.dumps([g.prompt, g.target]).encode())
    return h.hexdigest()[:16]
