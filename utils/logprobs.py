"""Log-probabilities of tokens: the one quantity every loss in the course is built on.

A language model's logits ``(B, T, V)`` at position ``t`` define a distribution
over the next token. ``token_logprobs(logits, targets)`` picks, at every
position, the log-probability the model gives the token that actually came
next: ``log p(targets[b, t] | tokens before it)``, a ``(B, T)`` tensor.

Everything else is a sum or a mean of it:

* the **language-model loss** (pretraining, SFT: notebooks 04, 06) is its negative
  mean over the counted tokens (``mean_nll``), the cross-entropy in nats per token;
* the **log-probability of a reply** is its sum over the reply's tokens: PPO's
  ratio ``pi(y|x) / pi_old(y|x)`` (Schulman et al. 2017), the **KL penalty** to the
  SFT model and DPO's loss (Rafailov et al. 2023) all compare such sums under two
  models (notebook 08), so they must come from the *same* function, or a tiny
  difference in masking would show up as a fake KL;
* the **per-token loss** of notebooks 04 and 05 (where the gap to the floor sits,
  the second copy of a segment) is its negative, position by position.

Targets equal to ``IGNORE`` (padding, the user's turns of a chat) count as 0 and
are left out of every mean.
"""
from __future__ import annotations

import torch

#: Target value that no loss counts: padding, prompts, the user's turns.
IGNORE = -100


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(targets[b, t])`` under ``logits[b, t]``: (B, T, V), (B, T) -> (B, T).

    Positions where ``targets == IGNORE`` give 0. Computed in at least float32
    (bf16 logits under autocast are upcast): log-probabilities of rare tokens
    need the precision. Gradients flow into ``logits``.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"targets must have the shape of logits without the vocabulary dimension: "
                         f"logits {tuple(logits.shape)} -> targets {tuple(logits.shape[:-1])}, "
                         f"got targets {tuple(targets.shape)}.")
    counted = targets != IGNORE  # (B, T)
    logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # (B, T, V)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    return picked * counted


def mean_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The language-model loss: mean negative log-probability (nats) per counted target token.

    The same number as ``F.cross_entropy(logits, targets, ignore_index=IGNORE)``
    (equal gradients, bit for bit; tested).
    """
    counted = int((targets != IGNORE).sum())
    if counted == 0:
        raise ValueError("no target token is counted (all are IGNORE): nothing to compute a loss on.")
    return -token_logprobs(logits, targets).sum() / counted


def total_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """``(sum of -log p, number of counted tokens)``: add these up over batches for an exact mean."""
    return float(-token_logprobs(logits.detach(), targets).sum()), int((targets != IGNORE).sum())
