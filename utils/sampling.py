"""Sampling: how a model that scores next tokens writes text, one token at a time.

Each step takes the last position's logits and picks the next token: the most
likely one (``temperature=0``, greedy), or a random draw from the softmax of
``logits / temperature``, optionally cut to the ``top_k`` best (Holtzman et al.
2020 discuss why cutting the tail helps).

Every sampler of the course -- stories (notebooks 03-04), chat replies (05-06),
many replies per prompt for RLHF (07-09) -- goes through ``sample``, the one loop:

* **batched across prompts**: prompts of different lengths are left-padded into
  one batch (``left_padded``), so every row's newest token sits in the same column;
* **with a KV cache** (``utils.attention.KVCache``): one pass over the prompts
  (the *prefill*), then each new token costs one position, not the whole prefix;
* **with log-probs**: per token, ``log p`` under the model's *own* distribution
  (``token_logprobs`` of the raw logits: temperature 1, no top-k), the policy that
  PPO, the KL penalty and DPO compare (notebook 08).

A cache cannot slide the context window: once a sequence outgrows ``block_size``,
every position embedding of the window shifts. Prompts that would outgrow it go
through the reference loop instead, which recomputes the last ``block_size``
tokens every step (what ``generate`` always did; notebook 05 shows what falls out).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import torch

from utils.logprobs import token_logprobs

__all__ = ["sample_next", "generate", "sample", "Samples", "left_padded", "fits_window"]


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


@dataclass
class Samples:
    """What ``sample`` wrote: one row per prompt (``n`` rows per prompt, prompt-major), one
    column per step (at most ``max_new_tokens``; fewer if every row stopped).

    ``tokens`` (B, S): the new token ids; once a row has written ``stop_id``, ``stop_id``.
    ``logprobs`` (B, S): ``log p(token)`` under the model's own distribution (temperature 1,
    no top-k), whatever ``temperature`` / ``top_k`` picked the token; 0 where not alive.
    ``alive`` (B, S): True where the model wrote the token, up to and including ``stop_id``.
    """
    tokens: torch.Tensor
    logprobs: torch.Tensor
    alive: torch.Tensor

    def written(self, row: int) -> tuple[list[int], torch.Tensor]:
        """Row ``row``'s tokens as the model wrote them (the stop token included) and their log-probs (L,)."""
        keep = self.alive[row]  # (S,)
        return self.tokens[row][keep].tolist(), self.logprobs[row][keep]


def left_padded(sequences: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences into an ``(N, W)`` batch padded on the *left*, and the pads per row ``(N,)``.

    Left padding puts every sequence's last token in the last column, so one step
    appends one column for all rows. The pads must be masked out of attention
    (``KVCache`` does); their id does not matter.
    """
    width = max(map(len, sequences))
    idx = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (N, W)
    for i, s in enumerate(sequences):
        idx[i, width - len(s):] = torch.as_tensor(s, dtype=torch.long)
    return idx, torch.tensor([width - len(s) for s in sequences])  # (N, W), (N,)


def fits_window(prompt_len: int, max_new_tokens: int, block_size: int) -> bool:
    """Can the model read the prompt and all but the last new token at once? (The last
    token is written, never read.) Then no token ever falls out of the context window."""
    return prompt_len + max_new_tokens - 1 <= block_size


@torch.no_grad()
def sample(model, prompts: list, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
           stop_id: int | None = None, generator: torch.Generator | None = None, n: int = 1) -> Samples:
    """Continue every prompt (a list of token-id lists, any lengths) ``n`` times, all in one batch.

    Rows are prompt-major: ``[p0 s0, ..., p0 s(n-1), p1 s0, ...]``. A row stops after
    writing ``stop_id`` and never changes again; generation ends when every row has
    stopped or ``max_new_tokens`` are written. ``temperature`` / ``top_k`` /
    ``generator`` as in ``sample_next``. The model is in eval mode (no dropout) while
    sampling. Prompts that fit the window (``fits_window``) share one KV-cached batch;
    the others take the recompute-and-crop loop, grouped by length.
    """
    prompts = [[int(t) for t in p] for p in prompts]
    _check_sample_args(model, prompts, max_new_tokens, temperature, top_k, stop_id, n)
    device = next(model.parameters()).device
    if max_new_tokens == 0:
        empty = torch.zeros(len(prompts) * n, 0, device=device)  # (B, 0)
        return Samples(empty.long(), empty, empty.bool())
    block = model.config.block_size
    was_training = model.training
    model.eval()
    try:
        fits = [fits_window(len(p), max_new_tokens, block) and hasattr(model, "new_cache") for p in prompts]
        parts = []  # (prompt indices, their Samples)
        cached = [i for i, ok in enumerate(fits) if ok]
        if cached:  # one batch, left-padded, KV-cached
            first, step = _prefill(model, [prompts[i] for i in cached], max_new_tokens, n, device)
            parts.append((cached, _decode(first, step, max_new_tokens, temperature, top_k, stop_id, generator)))
        long = sorted((i for i, ok in enumerate(fits) if not ok), key=lambda i: len(prompts[i]))
        for _, group in groupby(long, key=lambda i: len(prompts[i])):  # same length: no padding needed
            group = list(group)
            idx = torch.tensor([prompts[i] for i in group], device=device).repeat_interleave(n, 0)  # (b, P)
            first, step = _recompute(model, idx)
            parts.append((group, _decode(first, step, max_new_tokens, temperature, top_k, stop_id, generator)))
        return _merge(parts, len(prompts), n, stop_id)
    finally:
        model.train(was_training)


def _prefill(model, prompts: list[list[int]], max_new_tokens: int, n: int, device):
    """Read every prompt once into a KV cache; return the first logits (B, V) and the step function."""
    idx, n_pad = left_padded(prompts)  # (P, W), (P,)
    cache = model.new_cache(n_pad, idx.size(1) + max_new_tokens - 1)  # room for all but the last new token
    logits = model(idx.to(device), cache=cache)[:, -1, :]  # (P, V): each prompt's next-token scores
    if n > 1:  # n replies per prompt share its prefix: read it once, copy the cache
        rows = torch.arange(len(prompts), device=device).repeat_interleave(n)  # (P * n,)
        cache, logits = cache.select(rows), logits[rows]  # (B, V)

    def step(nxt: torch.Tensor) -> torch.Tensor:
        return model(nxt[:, None], cache=cache)[:, -1, :]  # (B, 1) new tokens -> (B, V): one position each

    return logits, step


def _recompute(model, idx: torch.Tensor):
    """The reference loop, no cache: every step reads the last ``block_size`` tokens afresh.

    Exact for any length, since the window slides (tokens fall out of the front),
    and costs the whole window per token."""
    block = model.config.block_size
    state = {"idx": idx}  # (B, P + t): the prompt and the tokens so far

    def step(nxt: torch.Tensor) -> torch.Tensor:
        state["idx"] = torch.cat([state["idx"], nxt[:, None]], dim=1)  # (B, P + t + 1)
        return model(state["idx"][:, -block:])[:, -1, :]  # (B, V)

    return model(idx[:, -block:])[:, -1, :], step  # (B, V)


def _decode(logits: torch.Tensor, step, max_new_tokens: int, temperature: float, top_k: int | None,
            stop_id: int | None, generator) -> Samples:
    """The loop itself: pick a token per row from ``logits`` (B, V), record it, feed it back with ``step``."""
    done = torch.zeros(logits.size(0), dtype=torch.bool, device=logits.device)  # (B,) wrote stop_id
    tokens, logps, alive = [], [], []
    for t in range(max_new_tokens):
        nxt = sample_next(logits, temperature, top_k, generator)  # (B,)
        if stop_id is not None:
            nxt = nxt.masked_fill(done, stop_id)  # a stopped row repeats stop_id and stays as it was
        tokens.append(nxt)
        logps.append(token_logprobs(logits[:, None], nxt[:, None])[:, 0])  # (B,): log p, temperature 1
        alive.append(~done)  # a row is alive up to and including the step it writes stop_id
        if stop_id is not None:
            done = done | (nxt == stop_id)
            if bool(done.all()):
                break
        if t + 1 < max_new_tokens:  # the last token is written, never read
            logits = step(nxt)  # (B, V)
    logps = torch.stack(logps, 1)  # (B, S)
    alive = torch.stack(alive, 1)  # (B, S)
    return Samples(torch.stack(tokens, 1), logps * alive, alive)


def _merge(parts, n_prompts: int, n: int, stop_id: int | None) -> Samples:
    """Put the rows of each part (prompt indices, Samples) back in prompt-major order; a part
    that ended early is padded with stopped columns (stop_id, log-prob 0, not alive)."""
    if len(parts) == 1 and parts[0][0] == list(range(n_prompts)):
        return parts[0][1]  # one part, in order: the usual case
    width = max(s.tokens.size(1) for _, s in parts)
    like = parts[0][1]
    B = n_prompts * n
    out = Samples(like.tokens.new_full((B, width), 0 if stop_id is None else stop_id),  # (B, S)
                  like.logprobs.new_zeros(B, width), like.alive.new_zeros(B, width))  # (B, S), (B, S)
    for prompts, s in parts:
        rows = (torch.tensor(prompts, device=like.tokens.device)[:, None] * n
                + torch.arange(n, device=like.tokens.device)).flatten()  # (b * n,): prompt-major rows
        w = s.tokens.size(1)
        out.tokens[rows, :w], out.logprobs[rows, :w], out.alive[rows, :w] = s.tokens, s.logprobs, s.alive
    return out


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, stop_id: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Append up to ``max_new_tokens`` sampled tokens to ``idx`` (B, T); return (B, T + n).

    Each step: take the last position's logits (the model sees at most the last
    ``block_size`` tokens), divide by ``temperature`` (0 = always the most likely
    token), keep the ``top_k`` best, sample. A sequence that has produced
    ``stop_id`` keeps emitting ``stop_id``; generation ends once every sequence
    has stopped. The model is put in eval mode (no dropout) while sampling.
    ``sample`` does the work (KV cache while the window is not full).
    """
    _check_generate_args(model, idx, max_new_tokens, temperature, top_k, stop_id)
    new = sample(model, idx.tolist(), max_new_tokens, temperature, top_k, stop_id, generator).tokens  # (B, S)
    return torch.cat([idx, new.to(idx.device)], dim=1)  # (B, T + S)


def _check_generate_args(model, idx, max_new_tokens, temperature, top_k, stop_id):
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        model._check_idx(idx)  # raises the model's own message: (B, T) token ids expected
    model._check_idx(idx[:, -model.config.block_size:])
    if idx.size(1) == 0:
        raise ValueError("generate needs at least one token to start from (a prompt or a start token).")
    _check_settings(model, max_new_tokens, temperature, top_k, stop_id)


def _check_sample_args(model, prompts, max_new_tokens, temperature, top_k, stop_id, n):
    if not prompts:
        raise ValueError("sample needs a non-empty list of prompts (lists of token ids).")
    for i, p in enumerate(prompts):
        if not p:
            raise ValueError(f"prompt {i} is empty: every prompt needs at least one token to start from "
                             f"(a prompt or a start token).")
        model._check_idx(torch.tensor([p[-model.config.block_size:]]))  # token ids in the vocabulary
    if n < 1:
        raise ValueError(f"n (samples per prompt) must be >= 1, got {n}.")
    _check_settings(model, max_new_tokens, temperature, top_k, stop_id)


def _check_settings(model, max_new_tokens, temperature, top_k, stop_id):
    if max_new_tokens < 0 or temperature < 0:
        raise ValueError(f"max_new_tokens and temperature must be >= 0, got {max_new_tokens}, {temperature}.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be None (no cut) or >= 1, got {top_k}.")
    vocab = model.config.vocab_size
    if stop_id is not None and not 0 <= stop_id < vocab:
        raise ValueError(f"stop_id {stop_id} is not a token id (0..{vocab - 1}).")
