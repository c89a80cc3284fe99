"""What does a model know? Fact recall, measured against TinyWorld's truth.

A pretrained model stores knowledge in its weights: asked to continue
``"This is a story about Mia. She had a"`` it should write Mia's pet. The
world knows every answer, so recall is an exact count, not an impression.
"""
from __future__ import annotations

import itertools
import re

import torch

from utils.logprobs import token_logprobs
from utils.world import FACT_VALUES, World, split_sentences, story_hero

#: A story opening that names the hero, then the start of a sentence whose next
#: word is the fact. Every prefix is a real sentence start of the grammar.
RECALL_PREFIXES = {
    "town": "{Pro} worked as a {job} in",
    "pet": "{Pro} had a",
    "colour": "{Poss} favourite colour was",
    "food": "Every day, {pro} ate",
    "job": "{Pro} worked as a",
}


def recall_prompts(world: World) -> list[tuple[str, str, str, str]]:
    """``(character, attribute, prompt, answer)`` for every fact of the world."""
    out = []
    for c in world.characters:
        slots = c.slots()
        for attr, prefix in RECALL_PREFIXES.items():
            prompt = f"This is a story about {c.name}. " + prefix.format(**slots)
            out.append((c.name, attr, prompt, c.facts[attr]))
    return out


def right_padded(sequences: list[list[int]], pad_id: int) -> torch.Tensor:
    """Stack sequences into an (N, W) batch, padded on the right. A causal model's
    outputs at real tokens never see the padding that comes after them."""
    idx = torch.full((len(sequences), max(map(len, sequences))), pad_id)  # (N, W)
    for i, s in enumerate(sequences):
        idx[i, :len(s)] = torch.tensor(s)
    return idx


@torch.no_grad()
def greedy_completes(model, tokenizer, prompts: list[str], answers: list[str]) -> list[bool]:
    """Would greedy decoding continue each prompt with `` answer``?

    Exactly the greedy test, done in one batched forward pass: greedy decoding
    writes the answer's tokens iff each of them is the arg-max given the tokens
    before it (teacher forcing). Rows are right-padded, which a causal model
    never looks at.
    """
    rows = [([tokenizer.eot_id] + tokenizer.encode(p), tokenizer.encode(" " + a))
            for p, a in zip(prompts, answers)]
    idx = right_padded([p + a for p, a in rows], tokenizer.pad_id)  # (N, W)
    best = model(idx[:, :-1]).argmax(-1)  # (N, W-1, V) -> (N, W-1)
    return [bool((best[i, len(p) - 1:len(p) + len(a) - 1] == torch.tensor(a)).all())
            for i, (p, a) in enumerate(rows)]


def fact_recall(model, tokenizer, world: World) -> dict:
    """Share of the world's facts the model completes correctly, overall and by attribute."""
    rows = recall_prompts(world)
    hits = greedy_completes(model, tokenizer, [r[2] for r in rows], [r[3] for r in rows])
    by_attr = {a: sum(h for h, r in zip(hits, rows) if r[1] == a) / len(world.characters)
               for a in RECALL_PREFIXES}
    return {"recall": sum(hits) / len(hits), **{f"recall_{a}": v for a, v in by_attr.items()}}


def fact_spans(story: str) -> list[tuple[int, int]]:
    """Character spans of fact words after the first sentence: given the story so
    far, each is certain (a hero's or a named friend's own fact), so its true
    cost is zero nats. (In the first sentence a job can come before the name.)"""
    start = len(split_sentences(story)[0])
    values = "|".join(v for vals in FACT_VALUES.values() for v in vals)
    return [m.span() for m in re.finditer(rf"\b({values})\b", story) if m.start() > start]


@torch.no_grad()
def token_nats(model, sequences: list[list[int]], pad_id: int) -> list[torch.Tensor]:
    """Negative log-probability (nats) of each token after the first, per sequence."""
    idx = right_padded(sequences, pad_id)  # (N, W)
    nll = -token_logprobs(model(idx[:, :-1]), idx[:, 1:])  # (N, W-1, V), (N, W-1) -> (N, W-1)
    return [nll[i, :len(s) - 1] for i, s in enumerate(sequences)]


def gap_on_fact_tokens(model, tokenizer, corpus, n_stories: int = 500) -> dict:
    """Split the model's excess loss over the true nats: how much sits on fact tokens?"""
    stories, true_nats = corpus.val[:n_stories], corpus.val_nats[:n_stories]
    seqs = [[tokenizer.eot_id] + tokenizer.encode(s) + [tokenizer.eot_id] for s in stories]
    model_nats, fact_nats = 0.0, 0.0
    for story, seq, nll in zip(stories, seqs, token_nats(model, seqs, tokenizer.pad_id)):
        model_nats += float(nll.sum())
        ends = list(itertools.accumulate(len(p) for p in tokenizer.pieces(seq[1:-1])))
        spans = fact_spans(story)
        for i, end in enumerate(ends):
            begin = end - len(tokenizer.pieces([seq[1 + i]])[0])
            if any(begin < b and end > a for a, b in spans):
                fact_nats += float(nll[i])
    gap = model_nats - sum(true_nats)
    return {"gap_nats": gap, "fact_nats": fact_nats, "fact_share": fact_nats / gap}


@torch.no_grad()
def wrong_name_mass(model, tokenizer, corpus, n_stories: int = 300) -> float:
    """Mean probability the model puts on *another* character's name where a
    sentence starts with the hero's name (there, only the hero can come)."""
    world, masses = corpus.world, []
    first_token = {c.name: tokenizer.encode(" " + c.name)[0] for c in world.characters}
    for story in corpus.val[:n_stories]:
        hero = story_hero(story, world)
        ids = [tokenizer.eot_id] + tokenizer.encode(story)
        starts = {m.start() for m in re.finditer(rf"(?<=[.\"] ){hero.name}\b", story)}
        if not starts:
            continue
        probs = torch.softmax(model(torch.tensor([ids]))[0].float(), -1)  # (T, V)
        wrong = sorted({t for n, t in first_token.items() if t != first_token[hero.name]})
        offset = 0
        for i, piece in enumerate(tokenizer.pieces(ids[1:])):
            if offset + 1 in starts and ids[1 + i] == first_token[hero.name]:
                masses.append(float(probs[i, wrong].sum()))  # logits at i predict token i+1 of ids
            offset += len(piece)
    return sum(masses) / len(masses)
