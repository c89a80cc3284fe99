"""Supervised fine-tuning (SFT): from story-teller to assistant.

Step 1 of InstructGPT (Ouyang et al. 2022, arXiv 2203.02155): human "trainers"
write the answer they want for a prompt (12,725 prompts there), and the
pretrained model is fine-tuned to imitate them, with the loss only on the
assistant's tokens (``utils.chat.sft_example``). Ours: about 1,700 TinyWorld
chats, one demonstration each; a third of them are conversations of several
turns (a follow-up, a correction, a fact stated turns earlier, a memory block).

Real demonstrations are imperfect, and so are ours: a share of TinyWorld's
trainers pad their answers, answer tersely, guess about characters they do not
know, or slip on a sum. The gold rater (``utils.gold``) scores those lower,
which leaves the later notebooks (reward model, RLHF) something to improve.

    python -m utils.build sft   # rebuilds data/checkpoints/sft.safetensors

How well a fine-tuned model answers is measured by ``utils.evaluate``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from utils.chat import sft_batch
from utils.chats import Chat, stated_pairs
from utils.logprobs import IGNORE
from utils.repro import seed_everything
from utils.train import TrainConfig, random_batches, train
from utils.world import FACT_VALUES, World

#: The share of demonstrations that carry a flaw, and the flaws by chat kind.
FLAW_RATE = 0.2
FILLER = " I really hope this answer helps you, and thank you so much for asking me."  # 47 tokens
# shorter: a story, or a long conversation, plus FILLER could overflow the 128-token context
STORY_FILLER = " I hope you liked my story!"
SHORT_FILLER = " I hope this helps!"
FACT_LIKE = ("fact", "followup", "correction")  # the reply is a fact sentence: it can be terse
LONG_PROMPT = ("callback", "memory")  # several turns before the question: short padding only


@dataclass(frozen=True)
class Demo:
    """A trainer's demonstration: the chat row, the reply written, and its flaw (or None)."""
    chat: Chat
    reply: str
    flaw: str | None


def flawed_reply(chat: Chat, rng: random.Random) -> tuple[str, str]:
    """An imperfect demonstration for ``chat``: (reply, name of the flaw)."""
    ref = chat.reference
    if chat.kind == "unknown":  # the trainer guesses instead of admitting not knowing
        value = rng.choice(FACT_VALUES[chat.attribute])
        return f"{chat.character}'s {chat.attribute} is {value}.", "guess"
    if chat.kind == "arithmetic":  # a slip
        *head, last = ref.rstrip(".").split(" ")
        return " ".join(head + [str(int(last) + rng.choice([-1, 1]))]) + ".", "slip"
    if chat.kind in FACT_LIKE and rng.random() < 0.5:
        return ref.rstrip(".").split(" ")[-1] + ".", "terse"
    filler = STORY_FILLER if chat.kind == "story" else SHORT_FILLER if chat.kind in LONG_PROMPT else FILLER
    return ref + filler, "verbose"


def demonstrations(chats: list[Chat], seed: int = 0, flaw_rate: float = FLAW_RATE) -> list[Demo]:
    """One demonstration per training chat (``split == "train"``), some of them flawed.

    Held-out (character, attribute) pairs have ``split == "heldout"``: no trainer
    ever answers them, so they test what the model brings from pretraining.
    """
    rng = random.Random(seed)
    demos = []
    for chat in chats:
        if chat.split != "train":
            continue
        if rng.random() < flaw_rate:
            demos.append(Demo(chat, *flawed_reply(chat, rng)))
        else:
            demos.append(Demo(chat, chat.reference, None))
    return demos


def demo_text(d: Demo) -> str:
    """Every word a demonstration shows the model: memory, every turn of the prompt, the reply."""
    return d.chat.text(d.reply)


def stated_by(demos: list[Demo], world: World) -> set[tuple[str, str]]:
    """Every (character, attribute) fact some demonstration may state (``utils.chats.stated_pairs``:
    the character named, or the hero of a story, and the value's word in the text)."""
    return {pair for d in demos
            for pair in stated_pairs(demo_text(d), world, d.chat.character if d.chat.kind == "story" else None)}


def demo_tensors(tokenizer, demos: list[Demo], block_size: int):
    """(x, y) rows for SFT: memory and prompt as context, the loss on the reply only."""
    return sft_batch(tokenizer, [(d.chat.prompt, d.reply, d.chat.memory) for d in demos], block_size)


# ---------------------------------------------------------------------------
# the recipe and the fine-tuning run
# ---------------------------------------------------------------------------
#: The SFT recipe of notebook 06 and of the shipped SFT checkpoint: about 7 passes over the ~1,700
#: demonstrations. The learning rate is a third of pretraining's. Measured on today's chats (one seed,
#: one thread): 5e-4 for 300 steps reached test gold 0.76 with follow-ups at 0.76 and corrections at
#: 0.60; 1e-3 for 360 steps reached 0.84 (0.90 and 0.72) and held-out accuracy 0.94, for the same rise
#: of the story loss (about 2%). No weight decay: it would pull every weight towards 0, not towards
#: the pretrained model.
@dataclass(frozen=True)
class SFTRecipe:
    """How the course fine-tunes: the loop's settings plus what goes into each step."""
    train: TrainConfig
    rows: int  # demonstrations per step
    lm_rows: int  # rows of pretraining stories per step: keeps the story loss from drifting up
    seed: int  # seeds the order of batches (and which demonstrations are flawed)


SFT = SFTRecipe(TrainConfig(steps=360, lr=1e-3, warmup_steps=20, eval_every=100, min_lr_ratio=0.1,
                            weight_decay=0.0, bf16=None), rows=32, lm_rows=4, seed=0)


def sft_batches(x: torch.Tensor, y: torch.Tensor, rows: int, seed: int, lm=None, lm_rows: int = 0):
    """``batches(step)``: ``rows`` seeded random demonstrations, plus ``lm_rows`` rows of stories.

    Mixing pretraining text into fine-tuning is InstructGPT's "PPO-ptx" idea
    (Ouyang et al. 2022), applied here to SFT: without it the model forgets how
    a story ends and its pretraining loss rises by more than half (notebook 06,
    exercise 06.3; ``tests/test_sft.py`` checks it).
    Trailing columns where no row has a target are cut: a causal model's
    outputs never depend on later positions, so that only saves time.
    """
    chats = random_batches(x, y, rows, seed)
    stories = lm.batches(lm_rows, seed + 1) if lm_rows else None

    def batches(step: int):
        xb, yb = chats(step)  # (rows, T)
        if stories is not None:
            xs, ys = stories(step)  # (lm_rows, T)
            xb, yb = torch.cat([xb, xs]), torch.cat([yb, ys])  # (rows + lm_rows, T)
        width = int((yb != IGNORE).any(0).nonzero().max()) + 1
        return xb[:, :width], yb[:, :width]
    return batches


def finetune(model, tokenizer, demos: list[Demo], lm=None, recipe: SFTRecipe = SFT, evaluate=None,
             progress: bool = True):
    """Fine-tune ``model`` in place on ``demos``: InstructGPT's SFT step. Returns the ``History``.

    Plain next-token cross-entropy (``utils.train.lm_loss``) on the reply
    tokens only: the prompt is context, never a target. Each demonstration
    is its own row, starting at position 0, exactly as a chat does at answer
    time. ``lm`` (a ``utils.pretrain.LMData``) supplies ``recipe.lm_rows`` rows of
    pretraining stories per step; use a recipe with ``lm_rows=0`` for pure SFT.
    """
    if recipe.lm_rows and lm is None:
        raise ValueError(f"lm_rows={recipe.lm_rows} rows of pretraining text per step need the stories: "
                         f"pass lm=load_lm_data(tokenizer, block_size) (from utils.pretrain), or a recipe "
                         f"with lm_rows=0 for pure SFT: dataclasses.replace(SFT, lm_rows=0).")
    x, y = demo_tensors(tokenizer, demos, model.config.block_size)  # (N, T), (N, T)
    seed_everything(recipe.seed)
    batches = sft_batches(x, y, recipe.rows, recipe.seed, lm, recipe.lm_rows)
    return train(model, batches, recipe.train, evaluate=evaluate, progress=progress, desc="SFT")
