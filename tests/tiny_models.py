"""Tiny random-weight models with real tokenizers, built offline in a second.

They exercise the whole loading and generation path (config, Auto classes, tokenizer,
generate, streaming) exactly as a downloaded model would, without the network. Output text
is gibberish but deterministic.
"""

from __future__ import annotations

from pathlib import Path

SUBJECTS = [
    "BERT",
    "GPT-2",
    "T5",
    "FAISS",
    "SmolLM2",
    "The encoder",
    "The decoder",
    "A retriever",
    "Paris",
    "The index",
]
VERBS = ["uses", "reads", "stores", "answers", "encodes", "ranks", "cites", "builds", "splits", "returns"]
OBJECTS = [
    "attention layers",
    "the question",
    "dense vectors",
    "short passages",
    "a context window",
    "token budgets",
    "the capital of France",
    "sentence boundaries",
    "model weights",
    "citations",
]

# A ChatML template like SmolLM2's, for testing the chat prompt path without a real chat model.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus() -> list[str]:
    """A few hundred deterministic sentences, with newlines and numbered passages in the mix."""
    lines = []
    for i, s in enumerate(SUBJECTS):
        for j, v in enumerate(VERBS):
            o = OBJECTS[(i + j) % len(OBJECTS)]
            lines.append(f"{s} {v} {o}.")
            lines.append(f"Question: Why does {s.lower()} {v.rstrip('s')} {o}?\nAnswer: because it is fast.")
            lines.append(f"Context: [{i + 1}] {s} {v} {o} in {1990 + i + j}!")
    return lines


def _train_bpe(special: list[str], vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def build_tiny_t5(folder: str | Path, *, seed: int = 0) -> Path:
    """An encoder-decoder (T5Config, d_model 32, 2+2 layers) with a byte-level BPE tokenizer
    that appends </s> like T5's. Saved with save_pretrained; returns the folder."""
    import torch
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    folder = Path(folder)
    raw = _train_bpe(["<pad>", "</s>", "<unk>"])
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    config = T5Config(
        vocab_size=raw.get_vocab_size(),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_gpt2(folder: str | Path, *, seed: int = 0, n_positions: int = 256, chat: bool = False) -> Path:
    """A decoder-only (GPT2Config, n_embd 32, 2 layers, `n_positions` window) with a byte-level
    BPE tokenizer; `chat=True` gives the tokenizer a ChatML template. Returns the folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = Path(folder)
    raw = _train_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    eos = "<|im_end|>" if chat else "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|endoftext|>", eos_token=eos)
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = GPT2Config(
        vocab_size=raw.get_vocab_size(),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=raw.token_to_id(eos),
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_scripted_gpt2(source: str | Path, folder: str | Path, script: list[int], first_position: int) -> Path:
    """A copy of a tiny GPT-2 whose greedy output is exactly `script` (then end-of-text) when
    its prompt is `first_position` tokens long.

    How: the blocks add nothing (zeroed output projections) and token embeddings are zero, so
    the last hidden state depends only on the position, through a one-hot position embedding;
    an untied LM head row then picks the scripted token for that position. Positions without a
    script give all-zero logits, whose argmax is token 0 (<|endoftext|>, the end).
    """
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(source, tie_word_embeddings=False).eval()
    width = model.config.n_embd
    assert len(script) < width, "one position per embedding dimension"
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
        wpe = model.transformer.wpe.weight
        wpe.zero_()
        for position in range(wpe.shape[0]):
            wpe[position, position % width] = 1.0
        for block in model.transformer.h:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                proj.weight.zero_()
                proj.bias.zero_()
        head = torch.zeros_like(model.lm_head.weight)
        for step, token in enumerate(script):  # logits at position p predict the token at p + 1
            head[token, (first_position - 1 + step) % width] = 1.0
        model.lm_head.weight.copy_(head)
    folder = Path(folder)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def build_tiny_qa(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight BERT with a span head and the packaged MiniLM's (fast, uncased) tokenizer."""
    return _tiny_bert("BertForQuestionAnswering", folder, seed)


def _tiny_bert(head: str, folder: Path, seed: int, **config) -> Path:
    """A 2-layer, 32-wide random-weight BERT with `head` (a transformers class name) and MiniLM's tokenizer."""
    import torch
    import transformers
    from transformers import AutoTokenizer, BertConfig

    from rag.train.reader import base_folder

    tokenizer = AutoTokenizer.from_pretrained(base_folder("all-MiniLM-L6-v2"))
    torch.manual_seed(seed)
    settings = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **config,
    )
    model = getattr(transformers, head)(settings)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def squad_file(path: Path, articles: dict[str, list[tuple[str, list[tuple[str, str]]]]]) -> Path:
    """A SQuAD v1.1 file: {title: [(context, [(question, answer), ...]), ...]}; answers located in the context."""
    import json

    data = []
    n = 0
    for title, paragraphs in articles.items():
        out = []
        for context, qas in paragraphs:
            items = []
            for question, answer in qas:
                n += 1
                items.append(
                    {
                        "id": f"q{n}",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": context.index(answer)}],
                    }
                )
            out.append({"context": context, "qas": items})
        data.append({"title": title, "paragraphs": out})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


def tiny_towns(path: Path, towns: tuple[str, ...] = ("Paris", "Lyon", "Nice"), stadium: bool = False) -> Path:
    """A SQuAD file of one article per town: two paragraphs and three questions each (a third
    paragraph and question on its stadium with `stadium`)."""
    articles = {}
    for a, town in enumerate(towns):
        articles[town] = [
            (
                f"{town} has {a + 3} bridges and a river called the R{a}. The mayor of {town} is Ms {town}son.",
                [
                    (f"How many bridges does {town} have?", f"{a + 3} bridges"),
                    (f"Who is the mayor of {town}?", f"Ms {town}son"),
                ],
            ),
            (
                f"The museum of {town} opened in {1900 + a}. It holds {a + 10} paintings.",
                [(f"When did the museum of {town} open?", f"{1900 + a}")],
            ),
        ]
        if stadium:
            articles[town].append(
                (
                    f"The stadium of {town} seats {a + 20} thousand people.",
                    [(f"How many seats has the stadium of {town}?", f"{a + 20} thousand")],
                )
            )
    return squad_file(path, articles)


def build_tiny_cross_encoder(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight BERT with a one-logit head (a CrossEncoder's shape) and the packaged MiniLM's tokenizer."""
    return _tiny_bert("BertForSequenceClassification", folder, seed, num_labels=1)


def build_tiny_encoder(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight BERT body without a head (as the packaged MiniLM is) and MiniLM's tokenizer."""
    return _tiny_bert("BertModel", folder, seed)
