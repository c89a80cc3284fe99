"""Supervised fine-tuning (SFT): from story-teller to assistant.

Step 1 of InstructGPT (Ouyang et al. 2022, arXiv 2203.02155): human "trainers"
write the answer they want for a prompt (12,725 prompts there), and the
pretrained model is fine-tuned to imitate them, with the loss only on the
assistant's tokens (``utils.chat.sft_example``). Ours: about 1,100 TinyWorld
chats, one demonstration each.

Real demonstrations are imperfect, and so are ours: a share of TinyWorld's
trainers pad their answers, answer tersely, guess about characters they do not
know, or slip on a sum. The gold rater (``utils.gold``) scores those lower,
which leaves the later notebooks (reward model, RLHF) something to improve.

    python -m utils.build sft   # rebuilds data/checkpoints/sft.safetensors
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import torch

from utils import seed_everything
from utils.chat import prompt_ids, reply_text, sft_batch
from utils.checkpoints import PRETRAINED, SFT_ARTIFACT, load_course_model
from utils.gold import gold_score, words
from utils.model import save_model
from utils.text import load_tokenizer
from utils.train import (
    IGNORE,
    TrainConfig,
    bf16_is_fast,
    eval_loss,
    load_lm_data,
    random_batches,
    train,
)
from utils.world import FACT_VALUES, HE_NAMES, SHE_NAMES, UNKNOWN_NAMES, load_chats

#: The share of demonstrations that carry a flaw, and the flaws by chat kind.
FLAW_RATE = 0.2
FILLER = " I really hope this answer helps you, and thank you so much for asking me."
STORY_FILLER = " I hope you liked my story!"  # shorter: a story plus FILLER can overflow the context


@dataclass(frozen=True)
class Demo:
    """A trainer's demonstration: the chat row, the reply written, and its flaw (or None)."""
    chat: dict
    reply: str
    flaw: str | None


def flawed_reply(chat: dict, rng: random.Random) -> tuple[str, str]:
    """An imperfect demonstration for ``chat``: (reply, name of the flaw)."""
    ref = chat["reference"]
    if chat["kind"] == "unknown":  # the trainer guesses instead of admitting not knowing
        value = rng.choice(FACT_VALUES[chat["attribute"]])
        return f"{chat['character']}'s {chat['attribute']} is {value}.", "guess"
    if chat["kind"] == "arithmetic":  # a slip
        *head, last = ref.rstrip(".").split(" ")
        return " ".join(head + [str(int(last) + rng.choice([-1, 1]))]) + ".", "slip"
    if chat["kind"] == "fact" and rng.random() < 0.5:
        return ref.rstrip(".").split(" ")[-1] + ".", "terse"
    return ref + (STORY_FILLER if chat["kind"] == "story" else FILLER), "verbose"


def demonstrations(chats: list[dict], seed: int = 0, flaw_rate: float = FLAW_RATE) -> list[Demo]:
    """One demonstration per training chat (``split == "train"``), some of them flawed.

    Held-out (character, attribute) pairs have ``split == "heldout"``: no trainer
    ever answers them, so they test what the model brings from pretraining.
    """
    rng = random.Random(seed)
    demos = []
    for chat in chats:
        if chat["split"] != "train":
            continue
        if rng.random() < flaw_rate:
            demos.append(Demo(chat, *flawed_reply(chat, rng)))
        else:
            demos.append(Demo(chat, chat["reference"], None))
    return demos


def demo_tensors(tokenizer, demos: list[Demo], block_size: int):
    """(x, y) rows for SFT: the prompt as context, the loss on the reply only."""
    return sft_batch(tokenizer, [(d.chat["prompt"], d.reply) for d in demos], block_size)


# ---------------------------------------------------------------------------
# the recipe and the fine-tuning run
# ---------------------------------------------------------------------------
#: The SFT recipe of notebook 06 and of the shipped SFT checkpoint: ~40 s on 2
#: cores, about 8 passes over the demonstrations. The learning rate is a sixth
#: of pretraining's: measured over 3 seeds, 5e-4 for 300 steps and 1e-3 for 200
#: steps gave the same test gold (0.84-0.86) and held-out accuracy (0.88-0.94),
#: and 5e-4 raised the story loss less. No weight decay: it would pull every
#: weight towards 0, not towards the pretrained model.
SFT = TrainConfig(steps=300, lr=5e-4, warmup_steps=20, eval_every=100, min_lr_ratio=0.1,
                  weight_decay=0.0, bf16=bf16_is_fast())
SFT_ROWS = 32  # demonstrations per step
SFT_LM_ROWS = 4  # rows of pretraining stories per step: keeps the story loss from drifting up
SFT_SEED = 0


def sft_batches(x: torch.Tensor, y: torch.Tensor, rows: int, seed: int, lm=None, lm_rows: int = 0):
    """``batches(step)``: ``rows`` seeded random demonstrations, plus ``lm_rows`` rows of stories.

    Mixing pretraining text into fine-tuning is InstructGPT's "PPO-ptx" idea
    (Ouyang et al. 2022), applied here to SFT: without it the model forgets how
    a story ends and its pretraining loss rises by about 75% (notebook 06).
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


def finetune(model, tokenizer, demos: list[Demo], lm=None, recipe: TrainConfig = SFT, rows: int = SFT_ROWS,
             lm_rows: int = SFT_LM_ROWS, seed: int = SFT_SEED, evaluate=None, progress: bool = True):
    """Fine-tune ``model`` in place on ``demos``: InstructGPT's SFT step. Returns the ``History``.

    Plain next-token cross-entropy (``utils.train.lm_loss``) on the reply
    tokens only: the prompt is context, never a target. Each demonstration
    is its own row, starting at position 0, exactly as a chat does at answer
    time. ``lm`` (an ``LMData``) supplies ``lm_rows`` rows of pretraining
    stories per step; pass ``lm_rows=0`` for pure SFT.
    """
    if lm_rows and lm is None:
        raise ValueError(f"lm_rows={lm_rows} rows of pretraining text per step need the stories: pass "
                         f"lm=load_lm_data(tokenizer, block_size), or lm_rows=0 for pure SFT.")
    x, y = demo_tensors(tokenizer, demos, model.config.block_size)  # (N, T), (N, T)
    seed_everything(seed)
    return train(model, sft_batches(x, y, rows, seed, lm, lm_rows), recipe, evaluate=evaluate,
                 progress=progress, desc="SFT")


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
#: Reply length limits in tokens: a story needs room (references reach ~80 tokens).
MAX_NEW_TOKENS = {"story": 96}
DEFAULT_NEW_TOKENS = 32


@torch.no_grad()
def greedy_replies(model, tokenizer, prompts: list, max_new_tokens: list[int]) -> list[tuple[str, bool]]:
    """Greedy ``(text, finished)`` for each prompt, many prompts per forward pass.

    Prompts of the same token length (and length limit) form one batch: no
    padding, so the answers are those of ``generate_reply`` one at a time.
    """
    ids = [prompt_ids(tokenizer, p) for p in prompts]
    groups = defaultdict(list)
    for i, (p, n) in enumerate(zip(ids, max_new_tokens)):
        groups[len(p), n].append(i)
    out = [None] * len(prompts)
    for (length, n), rows in groups.items():
        idx = torch.tensor([ids[i] for i in rows])  # (b, P)
        new = model.generate(idx, n, temperature=0.0, stop_id=tokenizer.end_id)[:, length:]  # (b, <=n)
        for i, row in zip(rows, new.tolist()):
            out[i] = reply_text(tokenizer, row)
    return out


def chat_eval(model, tokenizer, chats: list[dict]) -> dict:
    """Greedy answers to ``chats``: mean gold score, format-following rate, per kind.

    An answer *follows the format* when it ends with ``<|end|>`` within the
    length limit and is not empty: the model knows its turn is over.
    ``scores`` holds each answer's ``GoldScore`` (its parts: correct, honest, ...).
    """
    budgets = [MAX_NEW_TOKENS.get(c["kind"], DEFAULT_NEW_TOKENS) for c in chats]
    answers = greedy_replies(model, tokenizer, [c["prompt"] for c in chats], budgets)
    scores = [gold_score(c, text, done) for c, (text, done) in zip(chats, answers)]
    follows = [done and bool(text.strip()) for text, done in answers]
    kinds = sorted({c["kind"] for c in chats})
    by_kind = {k: _mean(s.total for s, c in zip(scores, chats) if c["kind"] == k) for k in kinds}
    return {"gold": _mean(s.total for s in scores), "format": _mean(follows), "by_kind": by_kind,
            "replies": [text for text, _ in answers], "scores": scores}


def behaviour(chats: list[dict], result: dict) -> dict:
    """What the answers *do*, from the gold rater's parts (``nan`` where a kind is absent).

    * ``idk``: unknown character -> "I don't know" and no made-up fact;
    * ``guess``: unknown character -> a made-up fact (what some trainers did);
    * ``fact_right``: the true fact about the asked character (gold ``correct`` >= 0.8);
    * ``wrong_name``: a fact answer that names some *other* character.
    """
    rows = list(zip(chats, result["scores"], result["replies"]))
    unknown = [s for c, s, _ in rows if c["kind"] == "unknown"]
    facts = [(c, s, r) for c, s, r in rows if c["kind"] == "fact"]
    return {"idk": _mean(s.correct == 1.0 for s in unknown) if unknown else float("nan"),
            "guess": _mean(s.honest == 0.0 for s in unknown) if unknown else float("nan"),
            "fact_right": _mean(s.correct >= 0.8 for _, s, _ in facts) if facts else float("nan"),
            "wrong_name": _mean(bool(other_names(c, r)) for c, _, r in facts) if facts else float("nan")}


def other_names(chat: dict, text: str) -> set[str]:
    """Names in ``text`` of people other than the one ``chat`` asks about."""
    return (set(words(text)) & _ALL_NAMES) - {chat["character"]}


_ALL_NAMES = set(SHE_NAMES) | set(HE_NAMES) | set(UNKNOWN_NAMES)


def _mean(xs) -> float:
    xs = list(xs)
    return float(sum(xs)) / max(1, len(xs))


def split(chats: list[dict], name: str) -> list[dict]:
    """The chat rows of one split: ``"train"``, ``"test"`` or ``"heldout"``."""
    return [c for c in chats if c["split"] == name]


# ---------------------------------------------------------------------------
# the shipped checkpoint
# ---------------------------------------------------------------------------
def build_sft() -> None:
    """Fine-tune the shipped pretrained model with ``SFT`` and save it (``make checkpoints``)."""
    tokenizer, chats = load_tokenizer(), load_chats()
    model = load_course_model(PRETRAINED)
    lm = load_lm_data(tokenizer, model.config.block_size)
    before = _summary(model, tokenizer, chats, lm)
    history = finetune(model, tokenizer, demonstrations(chats, SFT_SEED), lm)
    after = _summary(model, tokenizer, chats, lm)
    save_model(model, SFT_ARTIFACT.path, tokenizer=tokenizer,
               extra_metadata={"before": before, "after": after, "recipe": SFT.__dict__,
                               "rows": SFT_ROWS, "lm_rows": SFT_LM_ROWS, "seed": SFT_SEED,
                               "train_seconds": round(history.seconds, 1)})
    print(f"sft: test gold {before['gold']:.3f} -> {after['gold']:.3f}, format {before['format']:.2f} -> "
          f"{after['format']:.2f}, pretraining val loss {before['val_loss']:.4f} -> {after['val_loss']:.4f}, "
          f"{history.seconds:.0f} s -> {SFT_ARTIFACT.path}")


def _summary(model, tokenizer, chats, lm) -> dict:
    test, heldout = split(chats, "test"), split(chats, "heldout")
    res, held = chat_eval(model, tokenizer, test), chat_eval(model, tokenizer, heldout)
    return {"gold": round(res["gold"], 6), "format": round(res["format"], 6),
            "by_kind": {k: round(v, 6) for k, v in res["by_kind"].items()},
            "idk": round(behaviour(test, res)["idk"], 6),
            "heldout_right": round(behaviour(heldout, held)["fact_right"], 6),
            "val_loss": round(eval_loss(model, lm.x_val, lm.y_val), 6)}


def load_sft_model():
    """The shipped SFT model, checked against today's config and tokenizer.

    A missing or outdated file raises an error that names the command that
    rebuilds it (``make checkpoints``), as ``load_course_model`` does.
    """
    return load_course_model(SFT_ARTIFACT)
