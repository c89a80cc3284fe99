"""Sampling: how a model that scores next tokens writes text, one token at a time.

Each step feeds the tokens so far, takes the last position's logits, and picks
the next token: the most likely one (``temperature=0``, greedy), or a random
draw from the softmax of ``logits / temperature``, optionally cut to the
``top_k`` best (Holtzman et al. 2020 discuss why cutting the tail helps).

Every sampler of the course -- stories (notebooks 03-04), chat replies (05-06),
many replies per prompt for RLHF (07-09) -- goes through this module.
"""
from __future__ import annotations

import torch

__all__ = ["sample_next", "generate"]


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One sampling step: logits (B, V) -> token ids (B,), with temperature and top-k."""
    if temperature == 0:
        return logits.argmax(dim=-1)  # greedy
    logits = logits / temperature  # < 1 sharpens, > 1 flattens the distribution
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th best score
        logits = logits.masked_fill(logits < kth, float("-inf"))  # everything worse: probability 0
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)  # (B,)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, stop_id: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Append up to ``max_new_tokens`` sampled tokens to ``idx`` (B, T); return (B, T + n).

    Each step: feed the last ``block_size`` tokens, take the last position's
    logits, divide by ``temperature`` (0 = always the most likely token), keep
    the ``top_k`` best, sample. A sequence that has produced ``stop_id`` keeps
    emitting ``stop_id``; generation ends once every sequence has stopped.
    The model is put in eval mode (no dropout) while sampling.
    """
    _check_generate_args(model, idx, max_new_tokens, temperature, top_k, stop_id)
    was_training = model.training
    model.eval()
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        logits = model(idx[:, -model.config.block_size:])  # (B, T', V)
        nxt = sample_next(logits[:, -1, :], temperature, top_k, generator)  # (B,)
        if stop_id is not None:
            nxt = nxt.masked_fill(done, stop_id)
            done |= nxt == stop_id
        idx = torch.cat([idx, nxt[:, None]], dim=1)  # (B, T + 1)
        if stop_id is not None and bool(done.all()):
            break
    model.train(was_training)
    return idx


def _check_generate_args(model, idx, max_new_tokens, temperature, top_k, stop_id):
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        model._check_idx(idx)  # raises the model's own message: (B, T) token ids expected
    model._check_idx(idx[:, -model.config.block_size:])
    if idx.size(1) == 0:
        raise ValueError("generate needs at least one token to start from (a prompt or a start token).")
    if max_new_tokens < 0 or temperature < 0:
        raise ValueError(f"max_new_tokens and temperature must be >= 0, got {max_new_tokens}, {temperature}.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be None (no cut) or >= 1, got {top_k}.")
    vocab = model.config.vocab_size
    if stop_id is not None and not 0 <= stop_id < vocab:
        raise ValueError(f"stop_id {stop_id} is not a token id (0..{vocab - 1}).")
