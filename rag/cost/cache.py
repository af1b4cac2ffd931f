"""Key/value cache sizes: from the config exactly, and from the cache tensors for the cross-check.

Decoder self-attention: 2 (keys, values) x layers x kv_heads x head_dim x cached positions x
bytes, where a sliding-window layer (gemma-3) holds at most window - 1 positions, as
transformers' DynamicSlidingWindowLayer keeps. Encoder-decoder cross-attention: 2 x decoder
layers x heads x d_kv x encoder tokens x bytes, computed once from the encoder output and then
read at every generated token: it grows with everything the encoder read.
"""

from __future__ import annotations

from typing import Any

FP32_BYTES = 4


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def attention_shape(config: Any, encoder_decoder: bool) -> tuple[int, int, int]:
    """(decoder layers, key/value heads, head size) under whichever names the config uses."""
    if encoder_decoder:  # T5: num_decoder_layers (default: num_layers), num_heads, d_kv
        layers = _first(config, "num_decoder_layers", "decoder_layers", "num_layers")
        heads = _first(config, "num_heads", "decoder_attention_heads", "num_attention_heads")
        head_dim = _first(config, "d_kv") or _first(config, "d_model", "hidden_size") // heads
        return int(layers), int(heads), int(head_dim)
    layers = _first(config, "num_hidden_layers", "n_layer")
    heads = _first(config, "num_attention_heads", "n_head")
    kv_heads = _first(config, "num_key_value_heads") or heads
    head_dim = _first(config, "head_dim") or _first(config, "hidden_size", "n_embd") // heads
    return int(layers), int(kv_heads), int(head_dim)


def layer_lengths(config: Any, positions: int, encoder_decoder: bool) -> list[int]:
    """Positions each decoder layer's self-attention cache holds after `positions` tokens."""
    layers, _, _ = attention_shape(config, encoder_decoder)
    types = getattr(config, "layer_types", None) or ["full_attention"] * layers
    window = getattr(config, "sliding_window", None)
    return [min(positions, window - 1) if t == "sliding_attention" and window else positions for t in types[:layers]]


def kv_cache_bytes(config: Any, positions: int, *, encoder_decoder: bool, dtype_bytes: int = FP32_BYTES) -> int:
    """Bytes of the decoder's self-attention cache holding `positions` tokens."""
    _, kv_heads, head_dim = attention_shape(config, encoder_decoder)
    return 2 * kv_heads * head_dim * dtype_bytes * sum(layer_lengths(config, positions, encoder_decoder))


def cross_cache_bytes(config: Any, encoder_tokens: int, *, dtype_bytes: int = FP32_BYTES) -> int:
    """Bytes of an encoder-decoder's cross-attention cache over `encoder_tokens` encoder states."""
    layers, heads, head_dim = attention_shape(config, True)
    return 2 * layers * heads * head_dim * encoder_tokens * dtype_bytes


def measured_bytes(cache: Any) -> tuple[int, int]:
    """(self-attention, cross-attention) bytes actually held by a generate() cache object."""
    if cache is None:
        return 0, 0
    if hasattr(cache, "self_attention_cache"):  # EncoderDecoderCache
        return _layers_bytes(cache.self_attention_cache), _layers_bytes(cache.cross_attention_cache)
    return _layers_bytes(cache), 0


def _layers_bytes(cache: Any) -> int:
    if hasattr(cache, "layers"):  # transformers >= 4.56: a list of layers with .keys/.values
        tensors = [t for layer in cache.layers for t in (getattr(layer, "keys", None), getattr(layer, "values", None))]
    else:  # the legacy tuple of (key, value) per layer
        tensors = [t for layer in cache for t in layer]
    return sum(t.numel() * t.element_size() for t in tensors if t is not None and hasattr(t, "numel"))
