"""Evaluate any chat policy against the gold rater: the course's measure of "better".

A *policy* is any model that writes replies: the pretrained model, the SFT
model (notebook 06), the RLHF policies (08), the next versions trained on user
feedback (09). ``chat_eval`` answers a list of ``Chat`` rows greedily (so the
score is deterministic) and scores every answer with ``utils.gold`` -- the
synthetic "human" whose preferences the course knows, the role a fixed oracle
plays in Gao et al. 2022 and the DPO paper. ``behaviour`` reads what the answers
*do* from the gold score's parts.
"""
from __future__ import annotations

from collections import defaultdict

import torch

from utils.chat import prompt_ids, reply_text
from utils.chats import Chat
from utils.gold import gold_score, words
from utils.sampling import sample
from utils.world import HE_NAMES, SHE_NAMES, UNKNOWN_NAMES

#: Reply length limits in tokens: a story needs room (references reach ~80 tokens).
MAX_NEW_TOKENS = {"story": 96}
DEFAULT_NEW_TOKENS = 32


@torch.no_grad()
def greedy_replies(model, tokenizer, prompts: list, max_new_tokens: list[int],
                   memories: list[str | None] | None = None) -> list[tuple[str, bool]]:
    """Greedy ``(text, finished)`` for each prompt, all prompts of one length limit in one batch.

    ``memories``: the ``<|memory|>`` text put before each prompt (None: no memory block).

    ``utils.sampling.sample`` left-pads the prompts and masks the pads out of
    attention, so each answer is the one ``generate_reply`` gives alone (up to
    float rounding, which can only matter where two tokens tie).
    """
    memories = [None] * len(prompts) if memories is None else memories
    ids = [prompt_ids(tokenizer, p, m) for p, m in zip(prompts, memories)]
    groups = defaultdict(list)  # length limit -> prompt indices
    for i, n in enumerate(max_new_tokens):
        groups[n].append(i)
    out = [None] * len(prompts)
    for n, rows in groups.items():
        new = sample(model, [ids[i] for i in rows], n, temperature=0.0, stop_id=tokenizer.end_id)
        for j, i in enumerate(rows):
            out[i] = reply_text(tokenizer, new.written(j)[0])
    return out


def chat_eval(model, tokenizer, chats: list[Chat]) -> dict:
    """Greedy answers to ``chats`` (each with its memory block, if any): mean gold score,
    format-following rate, per kind.

    An answer *follows the format* when it ends with ``<|end|>`` within the
    length limit and is not empty: the model knows its turn is over.
    ``scores`` holds each answer's ``GoldScore`` (its parts: correct, honest, ...).
    """
    budgets = [MAX_NEW_TOKENS.get(c.kind, DEFAULT_NEW_TOKENS) for c in chats]
    answers = greedy_replies(model, tokenizer, [c.prompt for c in chats], budgets, [c.memory for c in chats])
    scores = [gold_score(c, text, done) for c, (text, done) in zip(chats, answers)]
    follows = [done and bool(text.strip()) for text, done in answers]
    kinds = sorted({c.kind for c in chats})
    by_kind = {k: _average(s.total for s, c in zip(scores, chats) if c.kind == k) for k in kinds}
    return {"gold": _average(s.total for s in scores), "format": _average(follows), "by_kind": by_kind,
            "replies": [text for text, _ in answers], "scores": scores}


def behaviour(chats: list[Chat], result: dict) -> dict:
    """What the answers *do*, from the gold rater's parts (``nan`` where a kind is absent).

    * ``idk``: unknown character -> "I don't know" and no made-up fact;
    * ``guess``: unknown character -> a made-up fact (what some trainers did);
    * ``fact_right``: the true fact about the asked character (gold ``correct`` >= 0.8);
    * ``wrong_name``: a fact answer that names some *other* character.
    """
    rows = list(zip(chats, result["scores"], result["replies"]))
    unknown = [s for c, s, _ in rows if c.kind == "unknown"]
    facts = [(c, s, r) for c, s, r in rows if c.kind == "fact"]
    return {"idk": _average(s.correct == 1.0 for s in unknown) if unknown else float("nan"),
            "guess": _average(s.honest == 0.0 for s in unknown) if unknown else float("nan"),
            "fact_right": _average(s.correct >= 0.8 for _, s, _ in facts) if facts else float("nan"),
            "wrong_name": _average(bool(other_names(c, r)) for c, _, r in facts) if facts else float("nan")}


def other_names(chat: Chat, text: str) -> set[str]:
    """Names in ``text`` of people other than the one ``chat`` asks about."""
    return (set(words(text)) & _ALL_NAMES) - {chat.character}


_ALL_NAMES = set(SHE_NAMES) | set(HE_NAMES) | set(UNKNOWN_NAMES)


def _average(xs) -> float:
    xs = list(xs)
    return float(sum(xs)) / max(1, len(xs))
