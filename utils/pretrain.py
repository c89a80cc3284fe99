"""Pretraining: the tiny GPT learns TinyWorld's stories by predicting the next token.

GPT-2's recipe in miniature (Radford et al. 2019), trained with the course's one
loop (``utils.train``): this module holds what pretraining adds to the loop --
the data (stories tokenized and *packed* into blocks, with the exact entropy
floor per token), the recipe (batch size and seed beside the optimiser
schedule), ``pretrain`` itself, and the points of notebook 04's scaling sweep.

Stories are packed (``pack_stories``): whole stories, each preceded by
``<|endoftext|>``, never cut across blocks, so every predicted token sees its
story from the start and the entropy floor is reachable.
"""
from __future__ import annotations

import bisect
import functools
import math
import random
import statistics
import time
from dataclasses import dataclass, replace

import torch

from utils.logprobs import IGNORE
from utils.model import GPT, GPTConfig
from utils.repro import seed_everything
from utils.text import load_tokenizer
from utils.train import TrainConfig, eval_loss, random_batches, train
from utils.world import floor_per_token, load_corpus


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
    corpus = corpus or load_corpus()
    train_ids = [tokenizer.encode(s) for s in corpus.train]
    val_ids = [tokenizer.encode(s) for s in corpus.val]
    pack = lambda ids: split_rows(pack_stories(ids, block_size, tokenizer.eot_id,  # noqa: E731
                                               tokenizer.pad_id), tokenizer.pad_id)
    (x_train, y_train), (x_val, y_val) = pack(train_ids), pack(val_ids)
    floor = floor_per_token(corpus.val_nats, sum(len(s) + 1 for s in val_ids))
    assert int((y_val != IGNORE).sum()) == sum(len(s) + 1 for s in val_ids)
    return LMData(x_train, y_train, x_val, y_val, floor)


# ---------------------------------------------------------------------------
# the recipe
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PretrainRecipe:
    """How the course pretrains: the loop's settings plus what the loop does not know."""
    train: TrainConfig
    batch_size: int  # rows of block_size tokens per step
    seed: int  # seeds the initial weights and the order of batches


#: Notebook 04's recipe, and the shipped checkpoint's: 1,000 steps of 32 rows of
#: 128 tokens (~3,800 predicted tokens a step), about 100 s on 2 cores.
#: ``bf16=None``: bfloat16 autocast where the CPU has native bf16 (``repro.bf16_is_fast``).
PRETRAIN = PretrainRecipe(TrainConfig(steps=1000, lr=3e-3, warmup_steps=50, eval_every=100, bf16=None),
                          batch_size=32, seed=0)


def pretrain(cfg: GPTConfig | None = None, recipe: PretrainRecipe = PRETRAIN, data: LMData | None = None,
             tokenizer=None, progress: bool = True, evaluate=None):
    """Train a fresh GPT on TinyWorld with ``recipe``; return ``(model, history)``.

    ``evaluate(model) -> dict`` runs every ``recipe.train.eval_every`` steps
    (default: the exact validation loss).
    """
    tokenizer = tokenizer or load_tokenizer()
    cfg = cfg or GPTConfig()
    data = data or load_lm_data(tokenizer, cfg.block_size)
    seed_everything(recipe.seed)
    model = GPT(cfg)
    if evaluate is None:
        evaluate = lambda m: {"val_loss": eval_loss(m, data.x_val, data.y_val)}  # noqa: E731
    history = train(model, data.batches(recipe.batch_size, recipe.seed), recipe.train, evaluate=evaluate,
                    progress=progress, desc="pretraining")
    return model, history


# ---------------------------------------------------------------------------
# compute: FLOPs per token (the course's one convention), the CPU's peak, MFU
# ---------------------------------------------------------------------------
def matmul_params(cfg: GPTConfig) -> int:
    """N: the weights every token is multiplied with -- 12 d^2 per block plus the head's V d.

    A block has q, k, v and the output projection (4 d^2) and the MLP (d -> 4d -> d:
    8 d^2). The head (V d) is the token embedding, tied (``GPTConfig.tie_weights``):
    counted once, for its matmul (the embedding lookup is free). Biases, LayerNorms
    and the position embedding are *added*, not multiplied: left out.
    """
    return cfg.n_layer * 12 * cfg.d_model ** 2 + cfg.vocab_size * cfg.d_model


def train_flops_per_token(cfg: GPTConfig) -> int:
    """Training FLOPs per token position: ``6 N + 12 n_layer T d_model`` -- the course's one convention.

    A multiply-add is 2 FLOPs, so the forward pass costs 2 FLOPs per weight of
    ``matmul_params`` per token and the backward pass twice that: 6 N (Kaplan et
    al. 2020, "Scaling Laws for Neural Language Models", arXiv 2001.08361, sec. 2.1).
    Attention also multiplies activations with activations: scores q.k over T keys
    and the weighted sum of T values, 2 x 2 T d forward per layer, 12 L T d with the
    backward (Chowdhery et al. 2022, PaLM, arXiv 2204.02311, app. B; nanoGPT's
    ``estimate_mfu``), counted over the whole T x T square. Kaplan's N leaves the
    embeddings (and so the tied head) out: at our sizes that would hide much of the
    work (the sweep's "tiny" model: blocks 6 x 12 L d^2 = 147k FLOPs a token, head
    6 V d = 98k, attention 98k), so we count the FLOPs the CPU really does. Every position of a batch counts,
    padding included: it costs the same. Used by the scaling sweep, MFU, notebook
    04 and ``bench/train_speed.py``.
    """
    return 6 * matmul_params(cfg) + 12 * cfg.n_layer * cfg.block_size * cfg.d_model


def median_seconds(fn, reps: int, warmup: int = 2) -> tuple[float, float]:
    """(median, best) seconds of ``fn()`` over ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, sizes=(1024,), reps: int = 5) -> float:
    """The CPU's practical peak: best median GFLOP/s of square ``torch.mm`` in ``dtype`` over ``sizes``.

    An (n, n) @ (n, n) product is 2 n^3 FLOPs. Large square matmuls are the
    fastest thing a CPU does, so this is the ceiling the training's FLOP/s is
    compared with (MFU). Uses torch's current thread count.
    """
    best = 0.0
    for n in sizes:
        gen = torch.Generator().manual_seed(0)
        a, b = torch.randn(n, n, generator=gen).to(dtype), torch.randn(n, n, generator=gen).to(dtype)
        med, _ = median_seconds(functools.partial(torch.mm, a, b), reps)
        best = max(best, 2 * n ** 3 / med / 1e9)
    return best


def mfu(tokens_per_second: float, cfg: GPTConfig, peak_gflops: float) -> float:
    """Model FLOPs utilisation (Chowdhery et al. 2022): achieved training FLOP/s / peak FLOP/s.

    ``tokens_per_second``: token positions trained per second (padding included).
    """
    if peak_gflops <= 0:
        raise ValueError(f"peak_gflops must be > 0 (a measured GFLOP/s), got {peak_gflops}.")
    return tokens_per_second * train_flops_per_token(cfg) / (peak_gflops * 1e9)


# ---------------------------------------------------------------------------
# the scaling sweep of notebook 04: which model size for a compute budget?
# ---------------------------------------------------------------------------
#: Model sizes, smallest first. "course" is notebook 04's own model (``GPTConfig()``'s sizes).
SCALING_SIZES = {"mini": dict(n_layer=2, n_head=1, d_model=16),
                 "tiny": dict(n_layer=2, n_head=1, d_model=32),
                 "small": dict(n_layer=3, n_head=2, d_model=64),
                 "course": dict(n_layer=4, n_head=4, d_model=128)}
#: Training budgets in FLOPs (``train_flops_per_token`` x tokens), doubling from 1.4e11.
SCALING_BUDGETS = tuple(1.4e11 * 2 ** k for k in range(6))
#: The budgets (indices into ``SCALING_BUDGETS``) each size is trained at: each
#: size from about 100 steps up, as far as the build's ~10 minutes allow. Every
#: budget has two sizes or more, so sizes are compared at equal compute
#: (Hoffmann et al. 2022's "IsoFLOP profiles").
SCALING_GRID = {"mini": range(0, 4), "tiny": range(0, 6), "small": range(2, 6), "course": range(4, 6)}


def scaling_runs() -> list[tuple[str, int]]:
    """``(size, steps)`` of every point of the sweep: the steps that spend each budget."""
    tokens_per_step = PRETRAIN.batch_size * GPTConfig().block_size
    return [(size, round(SCALING_BUDGETS[k] / (train_flops_per_token(GPTConfig(**SCALING_SIZES[size]))
                                               * tokens_per_step)))
            for size, ks in SCALING_GRID.items() for k in ks]


def scaling_point(size: str, steps: int, data: LMData, progress: bool = False) -> dict:
    """Train one (model size, steps) point of the sweep: its own run, with its own schedule
    (warm-up, then the cosine decays to the end of *this* run, as in Hoffmann et al. 2022)."""
    if size not in SCALING_SIZES:
        raise ValueError(f"unknown size {size!r}: the sweep has {list(SCALING_SIZES)}")
    cfg = GPTConfig(**SCALING_SIZES[size])
    schedule = replace(PRETRAIN.train, steps=steps, warmup_steps=min(50, steps // 5), eval_every=10**9)
    model, _ = pretrain(cfg, replace(PRETRAIN, train=schedule), data=data, progress=progress,
                        evaluate=lambda m: {})
    tokens = steps * PRETRAIN.batch_size * cfg.block_size  # every position a step computes
    return {"size": size, "steps": steps, "params": matmul_params(cfg), "tokens": tokens,
            "flops": train_flops_per_token(cfg) * tokens, "val_loss": eval_loss(model, data.x_val, data.y_val)}


def reducible_loss_at(points: list[dict], size: str, flops: float, floor: float) -> float:
    """``size``'s reducible loss (validation loss - floor) at training compute ``flops``.

    Interpolated linearly in log-log between the two sweep points around ``flops``
    (reducible loss falls roughly as a power of compute, Kaplan et al. 2020). Never
    extrapolated: outside the size's points (by more than 1%, the rounding of steps)
    it raises ``ValueError``.
    """
    mine = sorted((p for p in points if p["size"] == size), key=lambda p: p["flops"])
    if not mine:
        raise ValueError(f"no sweep points for size {size!r}")
    lo, hi = mine[0]["flops"], mine[-1]["flops"]
    if not lo / 1.01 <= flops <= hi * 1.01:
        raise ValueError(f"{size}: {flops:.3g} FLOPs is outside its points ({lo:.3g} to {hi:.3g})")
    if len(mine) == 1:
        return mine[0]["val_loss"] - floor
    xs = [math.log(p["flops"]) for p in mine]
    ys = [math.log(p["val_loss"] - floor) for p in mine]
    x = min(max(math.log(flops), xs[0]), xs[-1])
    i = min(max(bisect.bisect_left(xs, x) - 1, 0), len(xs) - 2)  # the segment [xs[i], xs[i + 1]] holding x
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return math.exp(ys[i] + t * (ys[i + 1] - ys[i]))


def compute_optimal(points: list[dict], floor: float, budgets=SCALING_BUDGETS) -> list[dict]:
    """For each budget: every size's interpolated reducible loss there, and the best size."""
    rows = []
    for budget in budgets:
        losses = {}
        for size in dict.fromkeys(p["size"] for p in points):
            try:
                losses[size] = reducible_loss_at(points, size, budget, floor)
            except ValueError:
                continue  # this size was not trained at this budget
        rows.append({"flops": budget, "losses": losses, "best": min(losses, key=losses.get)})
    return rows
