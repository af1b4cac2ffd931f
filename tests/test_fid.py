"""Fusion-in-Decoder on a tiny T5: every passage is encoded on its own, none is cut to share
one window, and the decoder really reads all of them."""

from __future__ import annotations

import pytest

from rag.documents import Passage
from rag.generators import BudgetError, load_generator
from rag.generators.base import ModeNotSupported
from rag.generators.fid import fid_encode
from rag.pipeline import GenerationSettings, answer_from, settings_for, split_label, with_modes

QUESTION = "Which model reads text?"


def passage(text: str, rank: int) -> Passage:
    return Passage(rank, f"doc{rank}.md", text, 0, len(text), 1, 1, 1.0 - rank / 10, rank)


def long_passages(n: int = 4) -> list[Passage]:
    return [passage(f"T5 encodes short passages in {1990 + i}. " * 6, i + 1) for i in range(n)]


def test_each_passage_is_encoded_whole_where_one_window_would_cut(tiny_t5):
    g = load_generator(tiny_t5, context_window=80)
    given = long_passages()
    joint = g.generate(QUESTION, given, max_new_tokens=4)
    assert joint.passages_cut >= 2 and joint.prompt_tokens <= 80  # one window: later passages cut or dropped

    answer = g.generate(QUESTION, given, max_new_tokens=4, fid=True)
    assert answer.fid and answer.passages_cut == 0 and answer.passages == given
    fit, inputs = g.prepare_fid(QUESTION, given, 4)
    assert len(inputs) == 4 and all(len(ids) <= 80 for ids in inputs)
    assert answer.prompt_tokens == sum(len(ids) for ids in inputs) > 80
    assert answer.prompt_tokens == len(inputs) * fit.fixed_tokens + sum(item.tokens for item in answer.budget)
    for p, ids in zip(given, inputs):  # each input is the question with that one passage
        assert ids == g.encode(g.prompt_style.render(QUESTION, [p.text.strip()]))


def test_a_passage_too_long_for_the_window_is_cut_on_its_own(tiny_t5):
    g = load_generator(tiny_t5, context_window=60)
    given = [passage("Short one. ", 1), passage("T5 reads text. " * 40, 2), passage("Another short one.", 3)]
    answer = g.generate(QUESTION, given, max_new_tokens=4, fid=True)
    assert [b.status for b in answer.budget] == ["whole", "cut", "whole"]  # only the long one is cut
    assert len(answer.passages) == 3 and len(answer.passages[1].text) < len(given[1].text)


def test_the_decoder_cross_attends_to_every_passage(tiny_t5):
    """The states the decoder receives have the summed length, their tail is the last passage
    encoded alone, and changing only the last passage changes what the decoder predicts."""
    import torch

    g = load_generator(tiny_t5)
    given = long_passages(3)
    _, inputs = g.prepare_fid(QUESTION, given, 4)
    seen = []
    hook = g.model.get_decoder().register_forward_hook(
        lambda module, args, kwargs, out: seen.append(kwargs["encoder_hidden_states"].shape[1]), with_kwargs=True
    )
    try:
        g.generate(QUESTION, given, max_new_tokens=2, fid=True)
    finally:
        hook.remove()
    assert seen and set(seen) == {sum(len(ids) for ids in inputs)}

    with torch.no_grad():
        states, mask = fid_encode(g.model, inputs, g.pad_token_id)
        alone = g.model.get_encoder()(input_ids=torch.tensor([inputs[-1]])).last_hidden_state
        assert torch.allclose(states.last_hidden_state[0, -len(inputs[-1]) :], alone[0], atol=1e-5)

        def first_step(passages):
            _, ids = g.prepare_fid(QUESTION, passages, 4)
            states, mask = fid_encode(g.model, ids, g.pad_token_id)
            start = torch.tensor([[g.model.config.decoder_start_token_id]])
            return g.model(encoder_outputs=states, attention_mask=mask, decoder_input_ids=start).logits[0, -1]

        changed = [*given[:-1], passage("The index stores dense vectors. " * 6, 3)]
        assert not torch.allclose(first_step(given), first_step(changed))


def test_extractive_fid_can_copy_from_the_last_passage_only(tiny_t5):
    g = load_generator(tiny_t5, context_window=60)
    given = [
        passage("T5 reads text. " * 12, 1),
        passage("BERT uses attention layers. " * 12, 2),
        passage("Paris stores dense vectors in 1999.", 3),
    ]
    holders = set()
    for seed in range(12):
        answer = g.generate(QUESTION, given, max_new_tokens=4, temperature=2.0, seed=seed, extractive=True, fid=True)
        assert answer.text in answer.passages[answer.span.passage].text
        holders.add(answer.span.passage)
    assert 2 in holders  # the last passage, which one shared window would have dropped
    assert g.generate(QUESTION, given, max_new_tokens=4).budget[2].status == "dropped"


def test_decoder_only_refuses_fid_in_one_line(tiny_gpt2):
    g = load_generator(tiny_gpt2)
    with pytest.raises(ModeNotSupported) as info:
        g.generate(QUESTION, long_passages(2), max_new_tokens=4, fid=True)
    assert isinstance(info.value, BudgetError) and "\n" not in str(info.value)
    assert "encoder-decoder" in str(info.value) and "decoder-only" in str(info.value)
    with pytest.raises(ModeNotSupported):
        answer_from(g, QUESTION, long_passages(2), GenerationSettings(fid=True))


def test_fid_labels():
    assert split_label("flan-t5-small+fid+extractive") == ("flan-t5-small", {"fid", "extractive"})
    assert split_label("my+model") == ("my+model", set())
    assert with_modes(["t5"], extractive=True, fid=True) == ["t5", "t5+fid", "t5+extractive", "t5+fid+extractive"]
    name, settings = settings_for("t5+fid", GenerationSettings(max_new_tokens=3))
    assert name == "t5" and settings.fid and not settings.extractive and settings.max_new_tokens == 3
