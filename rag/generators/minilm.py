"""The two generative families rag trains from all-MiniLM-L6-v2 (`rag train generator`), so the
shape of attention is the only thing that differs from the encoder-only reader:

- **encoder-decoder**: one MiniLM body used twice (Rothe et al. 2020's shared BERT2BERT). The
  encoder pass reads `question [SEP] passage` bidirectionally; the decoder pass runs the same
  layers causally over the answer, and reads the encoder's states through cross-attention, the
  only new weights (initialised from each layer's self-attention). One `BertLMHeadModel` with
  `add_cross_attention`: the encoder pass simply gives no `encoder_hidden_states`.
- **decoder-only**: the same MiniLM over `question [SEP] passage [SEP] answer` with one causal
  stack and the LM head tied to the word embeddings. With `attention="prefix"` (UniLM; Dong et
  al. 2019) the prompt is read bidirectionally and only the answer causally; with "causal" every
  token sees only the ones before it.

Both are `transformers` models underneath, so `HFGenerator` drives them (greedy or sampled
decoding, streaming, extractive constraints, FiD for the encoder-decoder); only the first
forward pass (the prompt's mask) and the encoder pass are rag's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.generators.base import DECODER_ONLY, ENCODER_DECODER

MARKER = "rag-generator.json"
ENCODER_DECODER_CLASS = "MiniLMEncoderDecoder"
PREFIX_LM_CLASS = "MiniLMPrefixLM"
CAUSAL_LM_CLASS = "BertLMHeadModel"


def open_mask(keep: Any) -> Any:
    """A 2-D keep mask (1 = token, 0 = padding) as an additive 4-D mask that lets every token see
    every token (bidirectional), for BERT's attention (a 4-D mask is used as given)."""
    import torch

    keep = keep[:, None, None, :].to(torch.float32)
    return (1.0 - keep) * torch.finfo(torch.float32).min


def prefix_mask(keep: Any, prefix: Sequence[int]) -> Any:
    """Additive 4-D mask for a prefix LM: row b's first `prefix[b]` tokens see each other, every
    later token sees the prefix and the tokens before it; padding is seen by none."""
    import torch

    batch, length = keep.shape
    rows = torch.arange(length, device=keep.device)[None, :, None]
    cols = torch.arange(length, device=keep.device)[None, None, :]
    starts = torch.tensor(list(prefix), device=keep.device)[:, None, None]
    allow = (cols < starts) | (cols <= rows)
    allow &= keep[:, None, :].bool()
    return torch.where(allow, 0.0, torch.finfo(torch.float32).min)[:, None]


def _classes() -> dict[str, Any]:
    """The model classes, built on first use (importing transformers takes seconds)."""
    global _CLASSES
    if _CLASSES:
        return _CLASSES
    import torch
    from transformers import BertLMHeadModel, DynamicCache, EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    class MiniLMPrefixLM(BertLMHeadModel):
        """BERT as a prefix LM: a forward pass with an empty cache is the prompt, read bidirectionally;
        tokens after it (decoding, with the cache) see everything before them."""

        def forward(self, input_ids=None, attention_mask=None, **kwargs):
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            if (
                attention_mask is not None
                and attention_mask.dim() == 2
                and (cache is None or cache.get_seq_length() == 0)
            ):
                attention_mask = open_mask(attention_mask)
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    class _Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids=None, attention_mask=None, **kwargs):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            states = self.model.bert(input_ids=input_ids, attention_mask=open_mask(attention_mask), use_cache=False)
            return BaseModelOutput(last_hidden_state=states.last_hidden_state)

    class MiniLMEncoderDecoder(BertLMHeadModel):
        """One BERT body as encoder (bidirectional, no cross-attention) and decoder (causal, with
        cross-attention to the encoder's states); `generate` takes the encoder's input as a
        seq2seq model's does, and returns [CLS] + the answer's tokens."""

        def get_encoder(self):
            return _Encoder(self)

        def encode(self, input_ids, attention_mask=None):
            return self.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        def generate(self, input_ids=None, attention_mask=None, encoder_outputs=None, **kwargs):
            if encoder_outputs is None:
                if attention_mask is None:
                    attention_mask = torch.ones_like(input_ids)
                states = self.encode(input_ids, attention_mask)
            else:
                states = encoder_outputs.last_hidden_state
            if attention_mask is None:
                attention_mask = torch.ones(states.shape[:2], dtype=torch.long, device=states.device)
            start = torch.full(
                (states.shape[0], 1), self.config.decoder_start_token_id, dtype=torch.long, device=states.device
            )
            cache = {_CACHE_ARG: EncoderDecoderCache(DynamicCache(), DynamicCache())}
            return super().generate(
                input_ids=start,
                attention_mask=torch.ones_like(start),
                encoder_hidden_states=states,
                encoder_attention_mask=attention_mask,
                **cache,
                **kwargs,
            )

    import inspect

    global _CACHE_ARG
    # transformers 5.x renamed the cache argument (past_key_values -> cache) in a minor release:
    # pass the one this copy's BERT takes.
    _CACHE_ARG = "cache" if "cache" in inspect.signature(BertLMHeadModel.forward).parameters else "past_key_values"
    _CLASSES.update(
        {PREFIX_LM_CLASS: MiniLMPrefixLM, ENCODER_DECODER_CLASS: MiniLMEncoderDecoder, CAUSAL_LM_CLASS: BertLMHeadModel}
    )
    return _CLASSES


_CLASSES: dict[str, Any] = {}
_CACHE_ARG = "cache"


def model_class(family: str, attention: str = "prefix") -> Any:
    """The class a family's weights load into."""
    name = (
        ENCODER_DECODER_CLASS
        if family == ENCODER_DECODER
        else PREFIX_LM_CLASS
        if attention == "prefix"
        else CAUSAL_LM_CLASS
    )
    return _classes()[name]


def model_args(family: str) -> dict:
    """Config changes that turn the encoder's config into each family's (loading the base model)."""
    args: dict = {"is_decoder": True, "tie_word_embeddings": True}
    if family == ENCODER_DECODER:
        args["add_cross_attention"] = True
    return args


def init_cross_attention(model: Any) -> int:
    """Each layer's new cross-attention starts as a copy of its self-attention (queries, keys,
    values and output), the warm start that lets a decoder read the encoder from the first step.
    Returns the number of layers copied."""
    import torch

    copied = 0
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            cross = getattr(layer, "crossattention", None)
            if cross is None:
                continue
            cross.load_state_dict(layer.attention.state_dict())
            copied += 1
    return copied


def family_of(config: Any) -> str:
    """A trained MiniLM generator's family, from its config (cross-attention = encoder-decoder)."""
    return ENCODER_DECODER if getattr(config, "add_cross_attention", False) else DECODER_ONLY


def load_minilm_generator(folder: Path, name: str, record: dict, device: str = "cpu", int8: bool = False):
    """A trained MiniLM generator folder (its rag-generator.json read and checked by the caller)
    as a Generator: float32 weights from model.safetensors, or (where that is absent, as in a
    shipped folder, or with `int8`) int8-stored ones dequantised."""
    from transformers import AutoConfig, AutoTokenizer

    from rag.generators.causal import CausalGenerator
    from rag.generators.int8_weights import WEIGHTS, load_int8
    from rag.generators.prompts import QuestionPassagePrompt
    from rag.generators.seq2seq import Seq2SeqGenerator

    cls = model_class(record["family"], record["attention"] or "prefix")
    if (folder / "model.safetensors").is_file() and not int8:
        model = cls.from_pretrained(str(folder))
    else:
        config = AutoConfig.from_pretrained(str(folder))
        try:  # every weight is overwritten below: skip drawing random ones (1.5 s of a cold load)
            from transformers.initialization import no_init_weights
        except ImportError:  # another transformers: draw them
            from contextlib import nullcontext as no_init_weights
        with no_init_weights():
            model = cls(config)
        state = load_int8(folder / WEIGHTS)
        missing, unexpected = model.load_state_dict(state, strict=False)
        model.tie_weights()
        untied = [k for k in missing if not k.startswith("cls.predictions.decoder")]
        if untied or unexpected:
            raise ValueError(f"{folder / WEIGHTS} does not match its config ({(untied or unexpected)[0]})")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    # The prompt budget counts whole candidate prompts before cutting them to the window; without
    # this, each long one prints transformers' "longer than the maximum sequence length" warning.
    tokenizer.model_max_length = 1 << 30
    model.to(device).eval()
    generator_cls = Seq2SeqGenerator if record["family"] == ENCODER_DECODER else CausalGenerator
    generator = generator_cls(
        name,
        model,
        tokenizer,
        context_window=record["window"],
        prompt_style=QuestionPassagePrompt(),
        device=device,
        source=str(folder),
    )
    trained = record.get("questions_trained")
    generator.questions_trained = trained if isinstance(trained, int) and not isinstance(trained, bool) else None
    return generator
