"""One training loop for the whole course: pretraining, SFT and the reward model.

The recipe is GPT-3's and nanoGPT's: AdamW (Loshchilov & Hutter 2019) with
weight decay on matrices only, a linear warm-up then a cosine decay of the
learning rate, gradient-norm clipping, and periodic evaluation. The loop knows
nothing about *what* is learned: it gets a ``batches(step)`` function that
returns ``(inputs, targets)`` and a ``loss_fn(model, inputs, targets)``.

Stories are *packed* into blocks (``pack_stories``): whole stories, each
preceded by ``<|endoftext|>``, never cut across blocks, so every predicted
token sees its story from the start and the entropy floor is reachable.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

IGNORE = -100  # target value that the loss skips (padding, prompts)


# ---------------------------------------------------------------------------
# data: stories -> packed blocks
# ---------------------------------------------------------------------------
def pack_stories(stories: list[list[int]], block_size: int, eot_id: int, pad_id: int,
                 seed: int = 0) -> torch.Tensor:
    """Pack tokenized stories into rows of ``block_size + 1`` tokens.

    Each row is ``eot s1 eot s2 eot ... pad pad``: the model reads row[:-1] and
    predicts row[1:]. Stories are shuffled with ``seed``, never split, and put
    in the first row with room for them (first-fit: little padding is wasted).
    Returns a (n_rows, block_size + 1) long tensor.
    """
    order = list(range(len(stories)))
    random.Random(seed).shuffle(order)
    shortest = min(len(s) for s in stories) + 1
    rows, open_rows = [], []
    for i in order:
        piece = stories[i] + [eot_id]
        if len(piece) + 1 > block_size + 1:
            raise ValueError(f"story {i} has {len(piece)} tokens: longer than block_size={block_size}")
        row = next((r for r in open_rows if len(r) + len(piece) <= block_size + 1), None)
        if row is None:
            row = [eot_id]
            rows.append(row)
            open_rows.append(row)
        row += piece
        open_rows = [r for r in open_rows if block_size + 1 - len(r) >= shortest]
    return torch.tensor([r + [pad_id] * (block_size + 1 - len(r)) for r in rows])  # (n_rows, T + 1)


def split_rows(rows: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of packed rows; targets at padding become ``IGNORE``."""
    x, y = rows[:, :-1].clone(), rows[:, 1:].clone()  # (N, T), (N, T)
    y[y == pad_id] = IGNORE
    return x, y


def random_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
    """``batches(step)``: a seeded random batch of rows for each step."""
    gen = torch.Generator().manual_seed(seed)

    def batches(step: int):
        idx = torch.randint(len(x), (batch_size,), generator=gen)  # (B,)
        return x[idx], y[idx]
    return batches


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """How to train. Defaults are the course's pretraining recipe."""
    steps: int = 1000
    lr: float = 3e-3  # small models like large steps (measured: 3e-3 beat 1e-3 in a 60 s budget)
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 100
    bf16: bool = False  # bfloat16 autocast: faster on CPUs with native bf16 (see utils.train.bf16_is_fast)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to ``cfg.lr * min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only, not on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)  # fused: one kernel, same math


def lm_loss(model, x, y) -> torch.Tensor:
    """Mean next-token cross-entropy over targets that are not ``IGNORE``."""
    logits, _ = model(x)  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE)


@dataclass
class History:
    """What happened during training; ``plot()`` draws the loss curves."""
    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    eval: list = field(default_factory=list)  # dicts from the evaluate callback
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def plot(self, ax=None, key: str = "val_loss", floor: float | None = None, smooth: int = 20):
        """Train loss (smoothed) and ``eval[key]`` against step, with the floor if given."""
        from utils.plots import floor_line, new_figure
        ax = new_figure("Training", "step", "loss (nats per token)", ax=ax)
        ax.plot(self.step, _smooth(self.train_loss, smooth), label="train (smoothed)", alpha=0.8)
        if self.eval and key in self.eval[0]:
            ax.plot(self.eval_step, [e[key] for e in self.eval], "o-", label=key.replace("_", " "))
        if floor is not None:
            floor_line(ax, floor)
        ax.legend()
        return ax


def train(model, batches, cfg: TrainConfig, loss_fn=lm_loss, evaluate=None,
          progress: bool = True, desc: str = "training") -> History:
    """Train ``model`` for ``cfg.steps`` steps; return its ``History``.

    ``batches(step) -> (x, y)``; ``evaluate(model) -> dict`` is called every
    ``cfg.eval_every`` steps and at the end (in eval mode, without gradients).
    """
    opt, hist = make_optimizer(model, cfg), History()
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, mininterval=1.0)
    start = time.perf_counter()
    for step in bar:
        x, y = batches(step)
        loss = _step(model, opt, loss_fn, x, y, lr_at(step, cfg), cfg)
        hist.step.append(step)
        hist.train_loss.append(loss)
        hist.tokens += int((y != IGNORE).sum())
        if evaluate is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            hist.eval_step.append(step + 1)
            hist.eval.append(run_eval(model, evaluate))
        hist.seconds = time.perf_counter() - start
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{hist.tokens_per_second:,.0f}", refresh=False)
    model.eval()
    return hist


def _step(model, opt, loss_fn, x, y, lr, cfg) -> float:
    model.train()
    for group in opt.param_groups:
        group["lr"] = lr
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        loss = loss_fn(model, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    return loss.item()


def run_eval(model, evaluate) -> dict:
    model.eval()
    with torch.no_grad():
        result = evaluate(model)
    model.train()
    return result


@torch.no_grad()
def eval_loss(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> float:
    """Mean loss per predicted token over *all* rows (exact, not a sample)."""
    total, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits, _ = model(x[i:i + batch_size])  # (b, T, V)
        yb = y[i:i + batch_size]
        total += F.cross_entropy(logits.float().flatten(0, 1), yb.flatten(),
                                 ignore_index=IGNORE, reduction="sum").item()
        count += int((yb != IGNORE).sum())
    return total / count


def bf16_is_fast() -> bool:
    """True on CPUs with native bfloat16 matmuls (AMX or AVX-512 BF16).

    Elsewhere bf16 autocast is emulated and *slower* than float32, so the course
    only turns it on where this says so. Decided from CPU flags, not timing, so
    the same machine always makes the same choice.
    """
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


# ---------------------------------------------------------------------------
# the pretraining data of the course, ready to train on
# ---------------------------------------------------------------------------
@dataclass
class LMData:
    """Packed TinyWorld stories and the exact entropy floor per predicted token."""
    x_train: torch.Tensor  # (N, T) inputs
    y_train: torch.Tensor  # (N, T) targets, IGNORE at padding
    x_val: torch.Tensor
    y_val: torch.Tensor
    floor: float  # nats per predicted token of the validation set: no model can go lower

    def batches(self, batch_size: int, seed: int):
        return random_batches(self.x_train, self.y_train, batch_size, seed)


def load_lm_data(tokenizer, block_size: int, corpus=None) -> LMData:
    """Tokenize and pack the shipped corpus; compute the validation floor per token.

    Every story is followed by ``<|endoftext|>``, which the model must predict
    (it costs zero nats once the story's closing sentence is seen), so the
    floor is the stories' exact nats divided by (story tokens + 1 each).
    """
    from utils.world import floor_per_token, load_corpus
    corpus = corpus or load_corpus()
    train_ids = [tokenizer.encode(s) for s in corpus.train]
    val_ids = [tokenizer.encode(s) for s in corpus.val]
    pack = lambda ids: split_rows(pack_stories(ids, block_size, tokenizer.eot_id,  # noqa: E731
                                               tokenizer.pad_id), tokenizer.pad_id)
    (x_train, y_train), (x_val, y_val) = pack(train_ids), pack(val_ids)
    floor = floor_per_token(corpus.val_nats, sum(len(s) + 1 for s in val_ids))
    assert int((y_val != IGNORE).sum()) == sum(len(s) + 1 for s in val_ids)
    return LMData(x_train, y_train, x_val, y_val, floor)
