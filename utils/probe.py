"""What does a model know? Measured against TinyWorld's truth (notebook 04).

A pretrained model stores knowledge in its weights: asked to continue
``"This is a story about Mia. She had a"`` it should write Mia's pet. The
world knows every answer, so each measure here is an exact count against the
grammar, not an impression:

* **fact recall** (``fact_recall``): greedy completion of every fact;
* **where the gap sits** (``gap_split``): the model's nats over the exact floor,
  split into fact tokens (true cost 0) and the rest;
* **samples** (``sample_stories``, ``story_shares``): grammatical in form, and true;
* **who the story is about** (``name_probs``): the probability of whole names,
  token by token, where the grammar allows only the hero (and, as a control,
  where it allows only another character).
"""
from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import torch

from utils.logprobs import token_logprobs
from utils.sampling import generate
from utils.world import (
    BODY,
    BODY_LENGTHS,
    CLOSINGS,
    FACT_VALUES,
    FREE_SLOTS,
    OPENINGS,
    World,
    split_sentences,
    story_hero,
)

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


def token_starts(tokenizer, ids: list[int]) -> list[int]:
    """Byte offset in the decoded text where each token begins."""
    return [0, *itertools.accumulate(len(tokenizer.token_bytes(t)) for t in ids)][:-1]


@torch.no_grad()
def token_nats(model, sequences: list[list[int]], pad_id: int) -> list[torch.Tensor]:
    """Negative log-probability (nats) of each token after the first, per sequence."""
    idx = right_padded(sequences, pad_id)  # (N, W)
    nll = -token_logprobs(model(idx[:, :-1]), idx[:, 1:])  # (N, W-1, V), (N, W-1) -> (N, W-1)
    return [nll[i, :len(s) - 1] for i, s in enumerate(sequences)]


# ---------------------------------------------------------------------------
# where the loss gap sits: fact tokens vs the rest
# ---------------------------------------------------------------------------
@dataclass
class StoryProbe:
    """Validation stories tokenized once (``<|endoftext|> story <|endoftext|>``), each predicted
    token marked if it is part of a fact word (true cost 0), with the stories' exact nats."""
    seqs: list[list[int]]
    is_fact: list[torch.Tensor]  # (len(seq) - 1,) bool per sequence: the predicted token is a fact
    true_nats: float  # exact -log p of the stories under the grammar (the floor, summed)
    pad_id: int

    @property
    def n_tokens(self) -> int:
        return sum(len(s) - 1 for s in self.seqs)


def story_probe(tokenizer, corpus, n_stories: int = 500) -> StoryProbe:
    """The first ``n_stories`` validation stories, ready for ``gap_split``."""
    seqs, marks = [], []
    for story in corpus.val[:n_stories]:
        ids = tokenizer.encode(story)
        spans = [(len(story[:a].encode()), len(story[:b].encode())) for a, b in fact_spans(story)]
        starts = token_starts(tokenizer, ids)
        ends = [b + len(tokenizer.token_bytes(t)) for b, t in zip(starts, ids)]
        marks.append(torch.tensor([any(b < e2 and e > a2 for a2, e2 in spans) for b, e in zip(starts, ends)]
                                  + [False]))  # the closing <|endoftext|> is no fact
        seqs.append([tokenizer.eot_id, *ids, tokenizer.eot_id])
    return StoryProbe(seqs, marks, float(sum(corpus.val_nats[:n_stories])), tokenizer.pad_id)


def gap_split(model, probe: StoryProbe) -> dict:
    """The model's loss on the probe's stories, the exact floor, and how much of the excess
    (the gap, in nats) sits on fact tokens -- where the truth costs nothing."""
    nll = token_nats(model, probe.seqs, probe.pad_id)
    model_nats = sum(float(n.sum()) for n in nll)
    fact_nats = sum(float(n[m].sum()) for n, m in zip(nll, probe.is_fact))
    gap = model_nats - probe.true_nats
    return {"loss": model_nats / probe.n_tokens, "floor": probe.true_nats / probe.n_tokens,
            "gap_nats": gap, "fact_nats": fact_nats, "other_nats": gap - fact_nats, "fact_share": fact_nats / gap}


# ---------------------------------------------------------------------------
# samples: how many are true TinyWorld stories?
# ---------------------------------------------------------------------------
def is_true_story(text: str, world: World) -> bool:
    """Does the grammar parse ``text`` as a story, with every fact right for the character it names?"""
    try:
        world.story_nats(text)
    except ValueError:
        return False
    return True


def sample_stories(model, tokenizer, n: int, temperature: float = 1.0, seed: int = 0) -> list[str]:
    """``n`` stories sampled in one batch from ``<|endoftext|>``, each cut at its own end."""
    start = torch.full((n, 1), tokenizer.eot_id)  # (n, 1)
    out = generate(model, start, model.config.block_size - 1, temperature=temperature, stop_id=tokenizer.eot_id,
                   generator=torch.Generator().manual_seed(seed))  # (n, 1 + S)
    rows = [row[1:] for row in out.tolist()]
    return [tokenizer.decode(r[:r.index(tokenizer.eot_id)] if tokenizer.eot_id in r else r) for r in rows]


@functools.lru_cache(maxsize=4)
def _loose_templates(world: World) -> tuple[list[re.Pattern], ...]:
    """Each template group (openings, body, closings) as regexes in which every slot takes
    any of its values: any name, any pronoun, any fact value -- the grammar's *form* only."""
    names = [c.name for c in world.characters]
    values = {"name": names, "friend": names, "Pro": ["She", "He"], "pro": ["she", "he"],
              "Poss": ["Her", "His"], "poss": ["her", "his"],
              **{slot: [o for o, _ in opts] for slot, opts in FREE_SLOTS.items()},
              **{a: v for a, v in FACT_VALUES.items()}, **{f"friend_{a}": v for a, v in FACT_VALUES.items()}}

    def loose(template):
        parts = re.split(r"\{(\w+)\}", template)  # literal, slot, literal, slot, ...
        return re.compile("".join(re.escape(p) if i % 2 == 0 else "(?:" + "|".join(map(re.escape, values[p])) + ")"
                                  for i, p in enumerate(parts)))
    return tuple([loose(t) for t, _ in group] for group in (OPENINGS, BODY, CLOSINGS))


def is_grammatical(text: str, world: World) -> bool:
    """Is ``text`` a story in the grammar's *form*: an opening, 2-5 body sentences and a closing,
    each a template of its kind, with any name, pronoun or fact in each slot?

    Weaker than ``is_true_story``: "This is a story about Mia. He had a cat. He had a dog.
    The end." is grammatical but not true (Mia is "she"; her pet is one animal).
    """
    sentences = split_sentences(text)
    if len(sentences) - 2 not in dict(BODY_LENGTHS):
        return False
    openings, body, closings = _loose_templates(world)
    groups = [openings] + [body] * (len(sentences) - 2) + [closings]
    return all(any(r.fullmatch(s) for r in group) for s, group in zip(sentences, groups))


def story_shares(stories: list[str], world: World) -> dict:
    """Share of ``stories`` that are grammatical (``is_grammatical``) and that are true (``is_true_story``)."""
    if not stories:
        raise ValueError("story_shares needs at least one story.")
    return {"grammatical": sum(is_grammatical(s, world) for s in stories) / len(stories),
            "true": sum(is_true_story(s, world) for s in stories) / len(stories)}


# ---------------------------------------------------------------------------
# who is the story about? whole names where the grammar allows only the hero
# ---------------------------------------------------------------------------
def name_slots(story: str, world: World) -> dict[str, list[int]]:
    """Byte offsets of the space before each place a name can start, after the first sentence.

    ``"hero"``: every sentence start. There the grammar allows exactly one name,
    the hero's ("Mia smiled.", "Mia's pet was..."); any other character's name
    has probability 0. ``"friend"``: every name inside a sentence ("met Leo,",
    "and Leo's pet"): always another character, never the hero.
    """
    sentences = split_sentences(story)
    names = "|".join(c.name for c in world.characters)
    slots, pos = {"hero": [], "friend": []}, len(sentences[0])
    for sentence in sentences[1:]:
        slots["hero"].append(pos)
        slots["friend"] += [pos + 1 + m.start() for m in re.finditer(rf" (?:{names})\b", sentence)]
        pos += 1 + len(sentence)
    return {k: [len(story[:o].encode()) for o in v] for k, v in slots.items()}


def grammar_hero_prob(body_so_far: int) -> float:
    """Exact probability that the next sentence starts with the hero's name, after the
    opening and ``body_so_far`` body sentences (the next one is a body sentence or the
    closing, as the story's length allows)."""
    at_least = sum(p for k, p in BODY_LENGTHS if k >= body_so_far)
    if at_least == 0:
        raise ValueError(f"no story has {body_so_far} body sentences")
    p_body = sum(p for k, p in BODY_LENGTHS if k > body_so_far) / at_least
    starts = lambda group: sum(p for t, p in group if t.startswith("{name}"))  # noqa: E731
    return p_body * starts(BODY) + (1 - p_body) * starts(CLOSINGS)


@torch.no_grad()
def next_logprobs(model, rows: list[list[int]], pad_id: int, chunk: int = 256) -> torch.Tensor:
    """``log p(next token | row)`` after each row (any lengths): (N, V), float32."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths share a batch
    out = torch.empty(len(rows), model.config.vocab_size)
    for k in range(0, len(order), chunk):
        part = order[k:k + chunk]
        idx = right_padded([rows[i] for i in part], pad_id)  # (n, W)
        last = torch.tensor([len(rows[i]) - 1 for i in part])  # (n,)
        logits = model(idx)[torch.arange(len(part)), last]  # (n, W, V) -> (n, V)
        out[part] = torch.log_softmax(logits.float(), dim=-1)
    return out


@torch.no_grad()
def continuation_probs(model, prefixes: list[list[int]], candidates: list[list[int]], pad_id: int,
                       min_prob: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``p(candidate's tokens come next | prefix)`` for every prefix x candidate: two (P, C) tensors.

    Chains next-token probabilities (teacher forcing): p(a b | x) = p(a | x) p(b | x a).
    Candidates share their first tokens, so the work follows a trie: one forward pass
    per (prefix, trie node). A branch whose probability so far is below ``min_prob`` is
    not followed: its candidates get 0 in the first tensor (``lower``) and that
    probability so far in the second (``upper``), so the truth lies between the two;
    with ``min_prob=0`` both are exact. Candidates must be prefix-free (no candidate's
    tokens begin another's), so their probabilities add up to "one of them comes next".
    """
    cands = [tuple(c) for c in candidates]
    if any(not c for c in cands) or any(a != b and b[:len(a)] == a for a in cands for b in cands):
        raise ValueError("candidates must be non-empty and prefix-free: no candidate's tokens may begin another's")
    children, under = {}, {}  # trie node -> next tokens on some candidate; node -> candidates below it
    for j, c in enumerate(cands):
        for k in range(len(c) + 1):
            under.setdefault(c[:k], []).append(j)
            if k < len(c):
                children.setdefault(c[:k], set()).add(c[k])
    lower = torch.zeros(len(prefixes), len(cands), dtype=torch.float64)
    upper = torch.zeros_like(lower)
    frontier = {(i, ()): 1.0 for i in range(len(prefixes))}  # (prefix, node) -> probability so far
    while frontier:
        keys = list(frontier)
        probs = next_logprobs(model, [list(prefixes[i]) + list(node) for i, node in keys], pad_id).double().exp()
        probs = probs.numpy()  # (K, V): plain floats are fast to index one by one
        grown = {}
        for row, (i, node) in enumerate(keys):
            for t in children[node]:
                child, p = node + (t,), frontier[(i, node)] * probs[row, t]
                if child in children and p >= min_prob:
                    grown[(i, child)] = p  # follow the branch
                elif child not in children:
                    lower[i, under[child][0]] = upper[i, under[child][0]] = p  # a whole candidate
                else:
                    upper[i, under[child]] = p  # pruned: each candidate below has at most p
        frontier = grown
    return lower, upper


def name_probs(model, tokenizer, corpus, n_stories: int = 20, where: str = "hero", min_prob: float = 1e-4) -> dict:
    """How much probability the model gives the hero's whole name, and any other character's, at
    ``name_slots(...)[where]`` of the first ``n_stories`` validation stories.

    Each of the world's names, " Mia" -> [' M', 'ia'], is scored with all its tokens
    (``continuation_probs``); only the tokenizer's own cut of each name is counted, not
    other token sequences that spell the same text. Returns means over the positions: ``hero`` (p of the
    hero's name), ``wrong`` (p of some other character's name: an upper bound,
    ``wrong_lower`` the lower one, as ``min_prob`` prunes), ``wrong_same_start``
    (the part of ``wrong`` on names that begin with the hero's first token), and the
    grammar's exact values: at hero slots ``grammar_hero_prob`` and 0 for the others,
    at friend slots 0 for the hero and 1 for the others.
    """
    if where not in ("hero", "friend"):
        raise ValueError(f"where must be 'hero' or 'friend', got {where!r}")
    world = corpus.world
    cands = [tokenizer.encode(" " + c.name) for c in world.characters]
    prefixes, heroes, grammar = [], [], []
    for story in corpus.val[:n_stories]:
        hero = world.characters.index(story_hero(story, world))
        ids = tokenizer.encode(story)
        token_at = {b: k for k, b in enumerate(token_starts(tokenizer, ids))}
        for j, offset in enumerate(name_slots(story, world)[where]):
            prefixes.append([tokenizer.eot_id, *ids[:token_at[offset]]])
            heroes.append(hero)
            grammar.append(grammar_hero_prob(j) if where == "hero" else 0.0)
    if not prefixes:
        raise ValueError(f"no {where} slots in the first {n_stories} validation stories: use more stories")
    lower, upper = continuation_probs(model, prefixes, cands, tokenizer.pad_id, min_prob)
    rows, hero_idx = torch.arange(len(prefixes)), torch.tensor(heroes)
    others = torch.ones_like(lower, dtype=torch.bool)
    others[rows, hero_idx] = False
    first = torch.tensor([c[0] for c in cands])
    same_start = others & (first[None, :] == first[hero_idx][:, None])  # (P, C)
    return {"positions": len(prefixes), "hero": float(lower[rows, hero_idx].mean()),
            "wrong": float((upper * others).sum(1).mean()), "wrong_lower": float((lower * others).sum(1).mean()),
            "wrong_same_start": float((upper * same_start).sum(1).mean()),
            "grammar_hero": sum(grammar) / len(grammar), "grammar_wrong": 0.0 if where == "hero" else 1.0}
