"""Placeholder tokens and prompt encoding with learned token vectors (the text side of every inversion method)."""
from __future__ import annotations

import contextlib
import weakref
from typing import Mapping, Sequence

import torch

from actionbench.errors import ConfigError


def placeholder_for(action_id: str, method: str = "") -> str:
    """A token string that no real word tokenizes to."""
    return f"<{method + '-' if method else ''}{action_id}>"


def add_placeholder_tokens(tokenizer, tokens: Sequence[str]) -> list[int]:
    """Register placeholder strings as single tokens (idempotent) and return their ids.

    Called on every training step: the added vocabulary is checked first (a few entries); the
    full 49k-entry vocabulary, a dict built on each ``get_vocab()`` call, only for new tokens."""
    missing = [t for t in tokens if t not in tokenizer.get_added_vocab()]
    if missing:
        vocab = tokenizer.get_vocab()
        tokenizer.add_tokens([t for t in missing if t not in vocab])
    return list(tokenizer.convert_tokens_to_ids(list(tokens)))


def token_embedding_module(text_encoder) -> torch.nn.Embedding:
    return text_encoder.get_input_embeddings()


def word_embedding(backbone, word: str) -> torch.Tensor:
    """The input embedding of ``word`` (mean over its sub-tokens): the usual initialisation."""
    ids = backbone.tokenizer(word, add_special_tokens=False).input_ids
    if not ids:
        raise ConfigError(f"initializer word {word!r} tokenizes to nothing; choose a plain word, e.g. 'person'")
    table = token_embedding_module(backbone.text_encoder).weight
    return table[torch.tensor(ids, device=table.device)].mean(0).detach().float().clone()


_TOKEN_CACHE_SIZE = 4096
_token_caches: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tokenize(tokenizer, prompts: Sequence[str], device) -> torch.Tensor:
    """Token ids (B, 77), padded as Stable Diffusion pads. Training steps draw from a few captions,
    so each prompt's ids are cached per tokenizer (keyed also on its size: an added token
    changes how prompts tokenize). The cached tensors are never written in place."""
    cache = _token_caches.setdefault(tokenizer, {})
    size = len(tokenizer)
    rows = []
    for prompt in prompts:
        key = (size, prompt)
        if key not in cache:
            if len(cache) >= _TOKEN_CACHE_SIZE:
                cache.clear()
            cache[key] = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length,
                                   truncation=True, return_tensors="pt").input_ids[0]
        rows.append(cache[key])
    return torch.stack(rows).to(device)


@contextlib.contextmanager
def substituted_embeddings(text_encoder, input_ids: torch.Tensor, vectors: Mapping[int, torch.Tensor]):
    """Inside the block, the text encoder sees ``vectors[token_id]`` wherever ``token_id`` occurs.

    Vectors are (D,) or (B, D) for one per prompt. The embedding table itself is never
    written, so the frozen text encoder stays bit-identical and gradients flow only to the
    vectors. Placeholder ids beyond the table are looked up as id 0 and then replaced.
    """
    embedding = token_embedding_module(text_encoder)
    masks = {tid: (input_ids == tid) for tid in vectors}

    def hook(module, inputs, output):
        for tid, vec in vectors.items():
            mask = masks[tid]
            if not mask.any():
                continue
            vec = vec.to(output.dtype)
            if vec.dim() == 1:
                vec = vec.expand(output.shape[0], -1)
            output = torch.where(mask[..., None], vec[:, None, :].expand_as(output), output)
        return output

    handle = embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def encode_prompts(backbone, prompts: Sequence[str], token_vectors: Mapping[str, torch.Tensor] | None = None,
                   text_encoder=None) -> torch.Tensor:
    """Encode prompts to the UNet's conditioning (B, 77, D), with learned vectors for placeholder tokens.

    Args:
        token_vectors: placeholder string -> vector (D,) or per-prompt vectors (B, D).
        text_encoder: a trainable copy to use instead of the backbone's.
    """
    encoder = text_encoder or backbone.text_encoder
    device = next(encoder.parameters()).device
    vectors = {}
    if token_vectors:  # placeholders first: they change how the prompts tokenize
        tids = add_placeholder_tokens(backbone.tokenizer, list(token_vectors))
        vectors = {tid: token_vectors[tok].to(device) for tid, tok in zip(tids, token_vectors)}
    ids = tokenize(backbone.tokenizer, prompts, device)
    table_size = token_embedding_module(encoder).num_embeddings
    lookup_ids = torch.where(ids >= table_size, torch.zeros_like(ids), ids)
    with substituted_embeddings(encoder, ids, vectors):
        return encoder(lookup_ids)[0]
