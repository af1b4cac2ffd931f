"""Fusion-in-Decoder (Izacard & Grave, 2021) for encoder-decoder models.

Each passage is encoded on its own, together with the question, so k passages cost k encoder
passes of one passage each (linear in k) instead of one pass over all of them (quadratic in
the total), and none is cut to share a 512-token window. The decoder then cross-attends to all
the encoder states laid end to end: it reads every passage at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fid_encode(model: Any, inputs: Sequence[Sequence[int]], pad_token_id: int = 0) -> tuple[Any, Any]:
    """Encode each id list separately (one padded batch) and join the unpadded states.

    Returns `(encoder_outputs, attention_mask)` for `model.generate(encoder_outputs=...,
    attention_mask=...)`: states of shape (1, sum of lengths, d_model), a mask of ones. Row i
    of the join is exactly what encoding input i alone gives (padding is masked, then dropped).
    """
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    device = next(model.parameters()).device
    longest = max(len(ids) for ids in inputs)
    batch = torch.full((len(inputs), longest), pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(batch)
    for row, ids in enumerate(inputs):
        batch[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, : len(ids)] = 1
    states = model.get_encoder()(input_ids=batch, attention_mask=mask).last_hidden_state
    joined = states[mask.bool()].unsqueeze(0)  # row-major: passage 1's tokens, then passage 2's, ...
    return BaseModelOutput(last_hidden_state=joined), torch.ones(joined.shape[:2], dtype=torch.long, device=device)
