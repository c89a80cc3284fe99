"""A tiny GPT: the decoder-only transformer of GPT-2 (Radford et al. 2019), after nanoGPT.

    tokens (B, T) -> token embedding + position embedding -> n_layer x Block -> LayerNorm -> head
    Block:  x = x + attention(LayerNorm(x));  x = x + MLP(LayerNorm(x))        ("pre-norm")

The output head shares its weights with the token embedding ("weight tying",
Press & Wolf 2017; used by GPT-2). Notebook 03 builds it block by block; training
(``utils.train``) and every later notebook import it from here.

Checkpoints are ``safetensors`` files (no pickle: loading one cannot run code),
with the model's config and the tokenizer's fingerprint in the file's metadata,
so a checkpoint never meets a model or tokenizer it was not made for.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention import MultiHeadAttention

__all__ = ["GPTConfig", "GPT", "Block", "MLP", "parameter_checksum", "save_model", "load_model",
           "read_checkpoint_metadata", "CheckpointMismatchError", "MissingCheckpointError"]


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))  # (B, T, d): look at earlier tokens
        x = x + self.mlp(self.ln2(x))  # (B, T, d): process each token on its own
        return x


class GPT(nn.Module):
    """The tiny GPT. ``forward(idx, targets)`` returns ``(logits, loss)``."""

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
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, ignore_index: int = -100,
                loss_mask: torch.Tensor | None = None):
        """Logits ``(B, T, vocab_size)`` for the next token at every position, and the loss.

        ``targets`` (B, T): the true next tokens; positions equal to ``ignore_index``
        (or where the bool ``loss_mask`` is False, e.g. the user's turns in a chat)
        do not count. The loss is the mean cross-entropy in nats per counted token.
        """
        self._check_idx(idx)
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, d) + (T, d) -> (B, T, d)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)  # (B, T, d)
        x = self.ln_f(x)  # (B, T, d)
        logits = self.head(x)  # (B, T, V)
        loss = None if targets is None else self._loss(logits, targets, ignore_index, loss_mask)
        return logits, loss

    def _loss(self, logits, targets, ignore_index, loss_mask):
        if targets.shape != logits.shape[:2]:
            raise ValueError(f"targets must have the same shape as idx {tuple(logits.shape[:2])}, "
                             f"got {tuple(targets.shape)}.")
        if loss_mask is not None:
            if loss_mask.dtype != torch.bool or loss_mask.shape != targets.shape:
                raise ValueError(f"loss_mask must be a bool tensor shaped like targets "
                                 f"{tuple(targets.shape)} (True = this position counts in the loss); "
                                 f"got {loss_mask.dtype} {tuple(loss_mask.shape)}.")
            targets = targets.masked_fill(~loss_mask, ignore_index)
        V = logits.size(-1)
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=ignore_index)

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

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, stop_id: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append up to ``max_new_tokens`` sampled tokens to ``idx`` (B, T); return (B, T + n).

        Each step: feed the last ``block_size`` tokens, take the last position's
        logits, divide by ``temperature`` (0 = always the most likely token), keep
        the ``top_k`` best, sample. A sequence that has produced ``stop_id`` keeps
        emitting ``stop_id``; generation ends once every sequence has stopped.
        The model is put in eval mode (no dropout) while sampling.
        """
        self._check_generate_args(idx, max_new_tokens, temperature, top_k, stop_id)
        was_training = self.training
        self.eval()
        done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])  # (B, T', V)
            nxt = sample_next(logits[:, -1, :], temperature, top_k, generator)  # (B,)
            if stop_id is not None:
                nxt = nxt.masked_fill(done, stop_id)
                done |= nxt == stop_id
            idx = torch.cat([idx, nxt[:, None]], dim=1)  # (B, T + 1)
            if stop_id is not None and bool(done.all()):
                break
        self.train(was_training)
        return idx

    def _check_generate_args(self, idx, max_new_tokens, temperature, top_k, stop_id):
        self._check_idx(idx[:, -self.config.block_size:] if isinstance(idx, torch.Tensor)
                        and idx.dim() == 2 else idx)
        if idx.size(1) == 0:
            raise ValueError("generate needs at least one token to start from (a prompt or a start token).")
        if max_new_tokens < 0 or temperature < 0:
            raise ValueError(f"max_new_tokens and temperature must be >= 0, got {max_new_tokens}, {temperature}.")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be None (no cut) or >= 1, got {top_k}.")
        if stop_id is not None and not 0 <= stop_id < self.config.vocab_size:
            raise ValueError(f"stop_id {stop_id} is not a token id (0..{self.config.vocab_size - 1}).")

    # ------------------------------------------------------------------ counting
    def num_parameters(self, by_part: bool = False):
        """Number of parameters (a tied matrix counts once); by part as a dict with a 'total'."""
        parts = {"embeddings": 0, "attention": 0, "mlp": 0, "norms": 0, "head": 0}
        for name, p in self.named_parameters():  # shared (tied) tensors are listed once
            parts[_part_of(name)] += p.numel()
        total = sum(parts.values())
        return {**parts, "total": total} if by_part else total


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


# ---------------------------------------------------------------------------
# Save / load: safetensors (no pickle) + config and tokenizer fingerprint.
# ---------------------------------------------------------------------------
FORMAT = "how-chatgpt-learns/gpt/v1"


class MissingCheckpointError(FileNotFoundError):
    """A checkpoint file is missing; the message says how to rebuild it."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was made for another model config or another tokenizer."""


def save_model(model: GPT, path, extra_metadata: dict | None = None, tokenizer=None) -> Path:
    """Write ``model``'s weights to ``path`` (.safetensors) with its config and tokenizer fingerprint.

    ``tokenizer``: the tokenizer object (its ``fingerprint()`` is stored) or a
    fingerprint string. ``extra_metadata``: any JSON-serialisable facts (training
    steps, validation loss, ...), read back by ``read_checkpoint_metadata``.
    A tied head is not stored twice: it is re-tied on load.
    """
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        del state["head.weight"]  # the same tensor as tok_emb.weight; safetensors refuses shared memory
    metadata = {"format": FORMAT, "config": json.dumps(model.config.to_dict(), sort_keys=True),
                "tokenizer_fingerprint": _fingerprint(tokenizer) or "",
                "extra": json.dumps(extra_metadata or {}, sort_keys=True)}
    save_file(state, str(path), metadata=metadata)
    return path


def read_checkpoint_metadata(path) -> dict:
    """``{"config": GPTConfig, "tokenizer_fingerprint": str | None, "extra": dict}`` of a checkpoint."""
    from safetensors import safe_open
    path = _existing(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise CheckpointMismatchError(f"{path} is not a course GPT checkpoint (format "
                                      f"{meta.get('format')!r}, expected {FORMAT!r}). "
                                      f"Rebuild it with `make checkpoints`.")
    try:
        config = GPTConfig(**json.loads(meta["config"]))
    except TypeError as exc:  # fields this version of GPTConfig does not know
        raise CheckpointMismatchError(f"{path} was saved by another version of utils/model.py ({exc}). "
                                      f"Rebuild it with `make checkpoints`.") from exc
    return {"config": config,
            "tokenizer_fingerprint": meta.get("tokenizer_fingerprint") or None,
            "extra": json.loads(meta.get("extra", "{}"))}


def load_model(path, expected_config=None, expected_tokenizer=None, device="cpu") -> GPT:
    """Load a checkpoint written by ``save_model``; check it fits what you expect.

    ``expected_config``: a ``GPTConfig`` (or a dict of some of its fields) the
    checkpoint must match; a mismatch names every field that differs.
    ``expected_tokenizer``: a tokenizer or fingerprint string it must have been
    trained with. The model is returned in eval mode.
    """
    from safetensors.torch import load_file
    meta = read_checkpoint_metadata(path)
    cfg = meta["config"]
    _check_config(path, cfg, expected_config)
    _check_tokenizer(path, meta["tokenizer_fingerprint"], expected_tokenizer)
    state = load_file(str(path), device=str(device))
    if cfg.tie_weights:
        state["head.weight"] = state["tok_emb.weight"]  # re-tie (load_state_dict copies into the shared tensor)
    model = GPT(cfg).to(device)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingCheckpointError(f"checkpoint {path} is missing. Rebuild it with `make checkpoints` "
                                     f"(run from the repository root).")
    return path


def _fingerprint(tokenizer) -> str | None:
    if tokenizer is None or isinstance(tokenizer, str):
        return tokenizer
    return str(tokenizer.fingerprint())


def _check_config(path, cfg: GPTConfig, expected) -> None:
    if expected is None:
        return
    want = expected.to_dict() if isinstance(expected, GPTConfig) else dict(expected)
    known = {f.name for f in fields(GPTConfig)}
    unknown = sorted(set(want) - known)
    if unknown:
        raise ValueError(f"expected_config has unknown field(s) {unknown}; GPTConfig fields: {sorted(known)}.")
    have = cfg.to_dict()
    diffs = [f"{k}: checkpoint has {have[k]!r}, expected {v!r}" for k, v in want.items() if have[k] != v]
    if diffs:
        raise CheckpointMismatchError(f"checkpoint {path} was saved with a different config ("
                                      + "; ".join(diffs) + "). Build the model with the checkpoint's "
                                      "config, or rebuild the checkpoint with `make checkpoints`.")


def _check_tokenizer(path, have: str | None, expected) -> None:
    want = _fingerprint(expected)
    if want is None or have == want:
        return
    raise CheckpointMismatchError(f"checkpoint {path} was trained with tokenizer fingerprint {have!r}, "
                                  f"but the tokenizer you passed has {want!r}: the same token id would mean "
                                  f"different text. Use the matching tokenizer, or rebuild the checkpoint "
                                  f"with `make checkpoints`.")
