"""A tiny GPT: the decoder-only transformer of GPT-2 (Radford et al. 2019), after nanoGPT.

    tokens (B, T) -> token embedding + position embedding -> n_layer x Block -> LayerNorm -> head
    Block:  x = x + attention(LayerNorm(x));  x = x + MLP(LayerNorm(x))        ("pre-norm")

The output head shares its weights with the token embedding ("weight tying",
Press & Wolf 2017; used by GPT-2). Notebook 03 builds it block by block; training
(``utils.train``) and every later notebook import it from here.

This module is the architecture only. A model maps token ids to logits
``(B, T, V)`` -- nothing else: losses and log-probabilities are computed from the
logits by ``utils.logprobs``, sampling by ``utils.sampling``, and the checkpoint
file format lives in ``utils.checkpoints``. For generation, ``model(idx, cache=kv)``
reads only the new tokens and remembers the rest in a ``KVCache``
(``utils.attention``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention import KVCache, MultiHeadAttention

__all__ = ["GPTConfig", "GPT", "Block", "MLP", "parameter_checksum"]


@dataclass
class GPTConfig:
    """The tiny GPT's sizes; small enough to train in minutes on a 2-core laptop."""
    vocab_size: int = 512  # the course's byte-level BPE (utils.text): 256 bytes + 250 merges + 6 special tokens
    block_size: int = 128  # context length in tokens: room for about two TinyWorld stories
    n_layer: int = 4  # 4 blocks: enough depth for two-step circuits such as induction heads
    n_head: int = 4  # 4 heads of 32 dims each: several patterns per layer, still cheap
    d_model: int = 128  # width of the residual stream; GPT-2 small uses 768, we need far less
    dropout: float = 0.0  # TinyWorld is large next to the model: little overfitting to fight
    bias: bool = True  # biases in Linear and LayerNorm, as in GPT-2
    tie_weights: bool = True  # head shares the token embedding: 64k fewer parameters, as in GPT-2

    def __post_init__(self):
        if self.d_model % self.n_head != 0:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}: "
                             f"each head gets d_model // n_head dimensions.")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {getattr(self, name)}.")

    def to_dict(self) -> dict:
        return asdict(self)


class MLP(nn.Module):
    """Position-wise feed-forward network: d -> 4d -> GELU -> d (GPT-2's MLP)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)  # widen: room to compute
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)  # back to the residual stream
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, T, d) -> (B, T, 4d) -> (B, T, d)


class Block(nn.Module):
    """One pre-norm transformer block: tokens talk (attention), then think (MLP).

    Each sub-layer *adds* its output to the residual stream ``x``, so a block can
    leave information untouched and gradients flow straight through the sum.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_head, causal=True, bias=cfg.bias,
                                       dropout=cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """``x`` (B, T, d) -> (B, T, d). With ``cache``, attention also sees the cached
        earlier tokens (this block is layer ``layer`` of the cache)."""
        x = x + self.drop(self.attn(self.ln1(x), cache=cache, layer=layer))  # (B, T, d): look at earlier tokens
        x = x + self.mlp(self.ln2(x))  # (B, T, d): process each token on its own
        return x


class GPT(nn.Module):
    """The tiny GPT: ``model(idx)`` maps token ids (B, T) to next-token logits (B, T, V)."""

    def __init__(self, cfg: GPTConfig | None = None):
        super().__init__()
        self.config = cfg = cfg or GPTConfig()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)  # token id -> vector
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)  # position 0..T-1 -> vector (learned)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)  # vector -> a score per token
        if cfg.tie_weights:
            self.head.weight = self.tok_emb.weight  # one (V, d) matrix, used twice
        self.apply(_init_gpt2)
        for block in self.blocks:  # GPT-2: scale residual projections by 1/sqrt(2 * n_layer)
            for proj in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    # ------------------------------------------------------------------ forward
    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)``: a score for every possible next token at every position.

        ``logits[b, t]`` is the model's prediction of token ``t + 1`` from tokens
        ``0..t``. Turn them into a loss or log-probabilities with ``utils.logprobs``.

        ``cache`` (a ``KVCache``, for generation): ``idx`` holds only the tokens that
        come after the ``cache.length`` already cached ones; they are stored too.
        """
        if cache is not None:
            return self._forward_cached(idx, cache)
        return self.head(self.features(idx))  # (B, T, d) -> (B, T, V)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """The final residual stream after ``ln_f``, ``(B, T, d_model)``: what the head reads.

        A reward model (``utils.reward``) puts a different head on the same features.
        """
        self._check_idx(idx)
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, d) + (T, d) -> (B, T, d)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)  # (B, T, d)
        return self.ln_f(x)  # (B, T, d)

    def new_cache(self, n_pad, max_len: int) -> KVCache:
        """An empty ``KVCache`` for this model: ``len(n_pad)`` rows, row ``b`` starting with
        ``n_pad[b]`` pad slots, room for ``max_len`` slots (pads included)."""
        return KVCache(self.config.n_layer, max_len, n_pad, device=self.tok_emb.weight.device)

    def _forward_cached(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """``forward`` for the ``T`` new tokens only: positions come from the cache (each
        row counts from its first real token), attention reads the cached keys and values."""
        self._check_idx(idx)
        self._check_cache(idx, cache)
        T = idx.size(1)
        pos = cache.positions(T)  # (B, T): per row, left padding not counted
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, d) + (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=i)  # (B, T, d)
        cache.advance(T)
        return self.head(self.ln_f(x))  # (B, T, V)

    def _check_cache(self, idx: torch.Tensor, cache: KVCache) -> None:
        if len(cache.keys) != self.config.n_layer or cache.batch_size != idx.size(0):
            raise ValueError(f"this cache has {len(cache.keys)} layers and {cache.batch_size} rows, but the "
                             f"model has {self.config.n_layer} layers and idx has {idx.size(0)} rows. "
                             f"Make one with model.new_cache(n_pad, max_len).")
        last = cache.length + idx.size(1) - 1 - int(cache.n_pad.min())  # the largest position asked for
        if last >= self.config.block_size:
            raise ValueError(f"position {last} >= block_size {self.config.block_size}: the context window "
                             f"is full, and a cache cannot slide it (every position embedding would "
                             f"change). Recompute from the last {self.config.block_size} tokens instead.")

    def _check_idx(self, idx: torch.Tensor) -> None:
        cfg = self.config
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (torch.long, torch.int):
            got = f"{idx.dtype} {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be an integer tensor of token ids, shape (B, T); got {got}. "
                             f"Hint: torch.tensor([ids]) adds the batch dimension.")
        if idx.size(1) > cfg.block_size:
            raise ValueError(f"sequence length {idx.size(1)} > block_size {cfg.block_size}: the model "
                             f"has position embeddings for {cfg.block_size} positions only. "
                             f"Keep the last {cfg.block_size} tokens: idx[:, -{cfg.block_size}:].")
        if idx.numel():
            hi, lo = int(idx.max()), int(idx.min())
            if hi >= cfg.vocab_size:
                raise ValueError(f"token id {hi} >= vocab_size {cfg.vocab_size}: was this model built "
                                 f"for a different tokenizer?")
            if lo < 0:
                raise ValueError(f"token id {lo} is negative: token ids run from 0 to vocab_size - 1.")

    # ------------------------------------------------------------------ counting
    def num_parameters(self, by_part: bool = False):
        """Number of parameters (a tied matrix counts once); by part as a dict with a 'total'."""
        parts = {"embeddings": 0, "attention": 0, "mlp": 0, "norms": 0, "head": 0}
        for name, p in self.named_parameters():  # shared (tied) tensors are listed once
            parts[_part_of(name)] += p.numel()
        total = sum(parts.values())
        return {**parts, "total": total} if by_part else total


def _init_gpt2(module: nn.Module) -> None:
    """GPT-2's initialisation: weights ~ N(0, 0.02), biases 0, LayerNorm gain 1."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def _part_of(name: str) -> str:
    if name.startswith(("tok_emb", "pos_emb")):
        return "embeddings"
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if name.startswith("head"):
        return "head"
    return "norms"  # ln1, ln2, ln_f


def parameter_checksum(model: nn.Module) -> float:
    """Sum of every parameter (in float64): a quick fingerprint to show weights did not change.

    Equal checksums before and after a chat mean the weights were not updated
    (any training step would move this number; it is not a cryptographic hash).
    """
    return float(sum(p.detach().double().sum() for p in model.parameters()))


