"""Induction heads: in-context learning in miniature.

After Olsson et al. 2022, "In-context Learning and Induction Heads" (arXiv 2209.11895).
A sequence is a random segment followed by an exact copy of it. The first copy is
pure noise (loss ``ln(vocab_size)`` at best); the second copy is predictable, but only
for a model that *looks back*: "the current token appeared before; copy what came
right after it". Two attention heads in two layers do this (a previous-token head,
then an *induction head*), and they appear suddenly during training: a phase change.
A one-layer attention-only model cannot build the circuit (Olsson et al. 2022).
Training varies the segment length, so no fixed "copy from L places back" rule works.

Nothing here changes weights at inference: what the model "learns" about a new
segment lives only in its context window.

Shapes: ``B`` batch, ``L`` segment length, ``T = 2L`` sequence length, ``nh`` heads,
``V`` vocabulary size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from utils.attention import MultiHeadAttention
from utils.logprobs import token_logprobs
from utils.repro import torch_threads
from utils.train import History, TrainConfig, lm_loss, train

__all__ = ["repeated_segments", "AttentionOnlyTransformer", "loss_per_position",
           "second_copy_loss", "first_copy_loss", "prefix_matching_score", "best_prefix_score",
           "InductionConfig", "train_induction", "curve", "phase_change_step"]


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def repeated_segments(batch: int, seg_len: int, vocab_size: int, generator: torch.Generator | None = None):
    """``batch`` rows of a random segment followed by an exact copy: ``(B, 2L)`` long.

    Tokens are drawn uniformly from ``0..vocab_size-1``, so the first copy cannot be
    predicted, and the second copy is predictable only from the first
    (Olsson et al. 2022 measure induction heads on repeated random tokens).
    """
    seg = torch.randint(0, vocab_size, (batch, seg_len), generator=generator)  # (B, L)
    return torch.cat([seg, seg], dim=1)  # (B, 2L)


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
class AttentionOnlyTransformer(nn.Module):
    """A transformer with attention layers only, no MLPs, like Olsson et al. 2022's small models.

    token + learned position embeddings -> ``n_layer`` x (pre-LayerNorm ->
    causal multi-head attention -> add to the residual stream) -> LayerNorm ->
    unembedding. ``forward(idx, return_weights=True)`` also returns each layer's
    attention weights, a list of ``n_layer`` tensors ``(B, nh, T, T)``.
    """

    def __init__(self, vocab_size: int, d_model: int, n_layer: int, n_head: int, block_size: int):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)  # learned positions: a previous-token head needs them
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layer))
        self.attns = nn.ModuleList(MultiHeadAttention(d_model, n_head, causal=True) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, idx: torch.Tensor, return_weights: bool = False):
        """``idx`` (B, T) -> logits (B, T, V) [, list of weights (B, nh, T, T) per layer]."""
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.block_size}")
        h = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))  # (B, T, d_model)
        weights = []
        for norm, attn in zip(self.norms, self.attns):
            if return_weights:
                out, w = attn(norm(h), return_weights=True)  # (B, T, d_model), (B, nh, T, T)
                weights.append(w)
            else:
                out = attn(norm(h))  # (B, T, d_model)
            h = h + out  # residual stream
        logits = self.unembed(self.ln_f(h))  # (B, T, V)
        return (logits, weights) if return_weights else logits


# ---------------------------------------------------------------------------
# losses on the two copies
# ---------------------------------------------------------------------------
def loss_per_position(model, x: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting ``x[:, t+1]`` from ``x[:, :t+1]``: ``(B, T-1)`` nats.

    Column ``t`` is the loss on token ``t+1``.
    """
    return -token_logprobs(model(x[:, :-1]), x[:, 1:])  # (B, T-1, V), (B, T-1) -> (B, T-1)


def second_copy_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Mean loss on tokens ``L+1..2L-1`` of the second copy, each predicted from the tokens before it.

    An induction head drives this towards 0; a model that ignores the first
    copy cannot beat ``ln(vocab_size)``. The copy's first token (position ``L``) is
    left out: nothing announces where the copy starts, so it is as random as
    any token of the first copy.
    """
    seg_len = x.size(1) // 2
    return loss_per_position(model, x)[:, seg_len:].mean()  # column t predicts token t+1


def first_copy_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Mean loss on tokens ``1..L-1`` of the first copy: random, so never below ``ln(vocab_size)`` on average."""
    seg_len = x.size(1) // 2
    return loss_per_position(model, x)[:, :seg_len - 1].mean()


# ---------------------------------------------------------------------------
# the induction pattern
# ---------------------------------------------------------------------------
def prefix_matching_score(weights: torch.Tensor, seg_len: int) -> torch.Tensor:
    """Olsson et al.'s prefix-matching score of each head: ``(B, nh, T, T) -> (nh,)``.

    On a repeated segment, the token at position ``L + i`` appeared before at
    position ``i``; an induction head attends to the token right *after* that
    earlier occurrence, position ``i + 1``. The score is the attention weight on
    that position, averaged over the second copy and the batch: 1 for a perfect
    induction head, about ``1/T`` for a head that spreads its attention evenly.
    """
    queries = torch.arange(seg_len, 2 * seg_len, device=weights.device)  # (L,) positions L..2L-1
    keys = queries - seg_len + 1  # (L,) right after the earlier occurrence
    return weights[:, :, queries, keys].mean(dim=(0, 2))  # (B, nh, L) -> (nh,)


@torch.no_grad()
def best_prefix_score(model, x: torch.Tensor) -> tuple[float, int, int]:
    """The highest prefix-matching score over all heads: ``(score, layer, head)``."""
    _, weights = model(x, return_weights=True)  # n_layer x (B, nh, T, T)
    scores = torch.stack([prefix_matching_score(w, x.size(1) // 2) for w in weights])  # (n_layer, nh)
    flat = int(scores.argmax())
    layer, head = divmod(flat, scores.size(1))
    return float(scores.max()), layer, head


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------
@dataclass
class InductionConfig:
    """Sizes measured on a shared 2-core machine, one thread: 1200 steps of the 2-layer model take
    15-25 s, and the phase change came between steps 450 and 575 on five seeds."""
    vocab_size: int = 64  # ln(64) = 4.16 nats: what a model that does not copy pays per random token
    seg_len: int = 16  # held-out segments: 16 random tokens, then the same 16 again
    min_seg_len: int = 8  # training draws a new segment length each step, so "copy the token
    max_seg_len: int = 24  # L places back" cannot work: the model must find the earlier occurrence
    d_model: int = 64  # 32 (with 2 heads) never left the plateau in 1200 steps
    n_head: int = 4  # head size 16
    batch_size: int = 32  # 64 was slower per step *and* needed more steps to leave the plateau
    lr: float = 3e-3  # the course default; 1e-3 stayed on the plateau for 1500 steps (seed 0); 1e-2
    #                   got a low loss without a clean induction head (best prefix score 0.14, seed 2)
    eval_every: int = 25  # fine enough to see when the drop happens
    eval_batch: int = 64  # a fixed held-out batch of repeated segments


def train_induction(n_layer: int, seed: int, steps: int, cfg: InductionConfig | None = None,
                    progress: bool = True, threads: int = 1):
    """Train an attention-only model on repeated random segments; return ``(model, History)``.

    The loss is ordinary next-token prediction over the whole sequence. Every
    ``eval_every`` steps ``History.eval`` records, on a fixed batch: the
    second-copy loss, the first-copy loss, and the best head's prefix-matching score.
    ``threads=1``: matrices this small gain nothing from a second thread, and
    when the second core is busy two threads were 10-20x slower (measured on a
    shared 2-core machine); the results agree to 1e-6 either way.
    """
    with torch_threads(threads):
        return _train_induction(n_layer, seed, steps, cfg or InductionConfig(), progress)


def _train_induction(n_layer: int, seed: int, steps: int, cfg: InductionConfig, progress: bool):
    torch.manual_seed(seed)
    model = AttentionOnlyTransformer(cfg.vocab_size, cfg.d_model, n_layer, cfg.n_head, 2 * cfg.max_seg_len)
    gen = torch.Generator().manual_seed(seed)
    held_out = repeated_segments(cfg.eval_batch, cfg.seg_len, cfg.vocab_size, torch.Generator().manual_seed(10_000 + seed))

    def batches(step):
        seg_len = int(torch.randint(cfg.min_seg_len, cfg.max_seg_len + 1, (), generator=gen))
        seq = repeated_segments(cfg.batch_size, seg_len, cfg.vocab_size, gen)  # (B, 2L)
        return seq[:, :-1], seq[:, 1:]  # inputs, next-token targets

    def evaluate(m):
        return {"second_copy_loss": second_copy_loss(m, held_out).item(),
                "first_copy_loss": first_copy_loss(m, held_out).item(),
                "prefix_score": best_prefix_score(m, held_out)[0]}

    tc = TrainConfig(steps=steps, lr=cfg.lr, eval_every=cfg.eval_every, warmup_steps=50)
    hist = train(model, batches, tc, loss_fn=lm_loss, evaluate=evaluate, progress=progress,
                 desc=f"{n_layer}-layer")
    return model, hist


def curve(hist: History, key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one evaluated quantity, e.g. ``curve(hist, "prefix_score")``."""
    return hist.eval_step, [e[key] for e in hist.eval]


def phase_change_step(hist: History, vocab_size: int, fraction: float = 0.5) -> int | None:
    """First evaluated step at which the second-copy loss is below ``fraction * ln(vocab_size)`` (None: never)."""
    steps, losses = curve(hist, "second_copy_loss")
    return next((s for s, loss in zip(steps, losses) if loss < fraction * math.log(vocab_size)), None)
