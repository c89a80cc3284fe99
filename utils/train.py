"""One training loop for the whole course: pretraining, SFT and the reward model.

The recipe is GPT-3's and nanoGPT's: AdamW (Loshchilov & Hutter 2019) with
weight decay on matrices only, a linear warm-up then a cosine decay of the
learning rate, gradient-norm clipping, and periodic evaluation. The loop knows
nothing about *what* is learned: it gets a ``batches(step)`` function that
returns ``(inputs, targets)`` and a ``loss_fn(model, inputs, targets)``; the
data of each stage lives with its stage (``utils.pretrain``, ``utils.sft``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from utils.logprobs import IGNORE, mean_nll, total_nll
from utils.repro import bf16_is_fast


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------
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
    bf16: bool | None = False  # bfloat16 autocast; None: on where this CPU has native bf16
    #                            (utils.repro.bf16_is_fast), decided when training starts


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
    """The language-model loss of ``model`` on a batch: mean nats per counted target (``mean_nll``)."""
    return mean_nll(model(x), y)  # model(x): (B, T, V)


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
    bf16 = bf16_is_fast() if cfg.bf16 is None else cfg.bf16
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, mininterval=1.0)
    start = time.perf_counter()
    for step in bar:
        x, y = batches(step)
        loss = train_step(model, opt, loss_fn, x, y, lr_at(step, cfg), cfg.grad_clip, bf16)
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


def train_step(model, opt, loss_fn, x, y, lr: float, grad_clip: float, bf16: bool) -> float:
    """One step: forward and loss, backward, clip the gradient norm, AdamW update at ``lr``."""
    model.train()
    for group in opt.param_groups:
        group["lr"] = lr
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = loss_fn(model, x, y)  # forward: (B, T) ids -> scalar loss
    opt.zero_grad(set_to_none=True)
    loss.backward()  # gradients of every parameter
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # rescale if the norm exceeds grad_clip
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
        nats, n = total_nll(model(x[i:i + batch_size]), y[i:i + batch_size])  # model: (b, T, V)
        total, count = total + nats, count + n
    return total / count


def _smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out
