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

import random
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
# the scaling sweep of notebook 04
# ---------------------------------------------------------------------------
#: Model sizes x training steps.
SCALING_SIZES = {"tiny": dict(n_layer=2, n_head=1, d_model=32),
                 "small": dict(n_layer=3, n_head=2, d_model=64),
                 "course": dict(n_layer=4, n_head=4, d_model=128)}
SCALING_STEPS = (100, 300, 1000)


def scaling_point(size: str, steps: int, data: LMData, progress: bool = False) -> dict:
    """Train one (model size, step budget) point of the scaling sweep."""
    cfg = GPTConfig(**SCALING_SIZES[size])
    schedule = replace(PRETRAIN.train, steps=steps, warmup_steps=min(50, steps // 5), eval_every=10**9)
    model, hist = pretrain(cfg, replace(PRETRAIN, train=schedule), data=data, progress=progress,
                           evaluate=lambda m: {})
    n_params = model.num_parameters() - cfg.vocab_size * cfg.d_model  # non-embedding, as Kaplan 2020
    return {"size": size, "steps": steps, "params": n_params, "tokens": hist.tokens,
            "flops": 6 * n_params * hist.tokens, "val_loss": eval_loss(model, data.x_val, data.y_val)}
