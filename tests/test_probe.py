"""utils.probe: fact recall is exactly the greedy test; per-token nats; the fact spans of a story; the gap
split; grammatical and true samples; whole-name probabilities against the grammar's."""
import math

import pytest
import torch
from conftest import make_gpt

from utils.checkpoints import PRETRAINED, load_course_model
from utils.logprobs import token_logprobs
from utils.model import GPTConfig
from utils.probe import (
    continuation_probs,
    fact_recall,
    fact_spans,
    gap_split,
    grammar_hero_prob,
    greedy_completes,
    is_grammatical,
    is_true_story,
    name_probs,
    name_slots,
    next_logprobs,
    recall_prompts,
    right_padded,
    sample_stories,
    story_probe,
    story_shares,
    token_nats,
)
from utils.sampling import generate
from utils.world import BODY, BODY_LENGTHS, CLOSINGS, World, load_corpus


def test_right_padded_keeps_each_sequence_at_the_start():
    idx = right_padded([[1, 2, 3], [4]], pad_id=9)
    assert idx.tolist() == [[1, 2, 3], [4, 9, 9]]


def test_greedy_completes_agrees_with_greedy_generation(chat_gpt, tok):
    prompts = ["This is a story about Mia. She had a", "Leo lived in"]
    first = []
    for p in prompts:  # whatever the untrained model writes greedily is, by definition, 'completed'
        ids = torch.tensor([[tok.eot_id] + tok.encode(p)])
        first.append(tok.decode(generate(chat_gpt, ids, 3, temperature=0)[0, ids.size(1):].tolist()))
    assert greedy_completes(chat_gpt, tok, prompts, [w.lstrip() for w in first]) == [
        first[0].startswith(" "), first[1].startswith(" ")]
    assert greedy_completes(chat_gpt, tok, prompts, ["zzzz", "qqqq"]) == [False, False]


def test_token_nats_is_minus_token_logprobs(chat_gpt, tok):
    seqs = [[tok.eot_id] + tok.encode("Mia had a cat."), [tok.eot_id] + tok.encode("Hi")]
    nats = token_nats(chat_gpt, seqs, tok.pad_id)
    assert [len(n) for n in nats] == [len(s) - 1 for s in seqs]
    with torch.no_grad():
        ref = -token_logprobs(chat_gpt(torch.tensor([seqs[0][:-1]])), torch.tensor([seqs[0][1:]]))[0]
    torch.testing.assert_close(nats[0], ref)


def test_recall_prompts_cover_every_fact():
    world = World(0)
    rows = recall_prompts(world)
    assert len(rows) == 5 * len(world.characters)
    mia_pet = next(r for r in rows if r[0] == "Mia" and r[1] == "pet")
    assert mia_pet[2].endswith("She had a") and mia_pet[3] == world.by_name["Mia"].facts["pet"]


def test_fact_spans_skip_the_first_sentence():
    story = "Once upon a time, there was a baker called Mia. She had a cat. The end."
    spans = fact_spans(story)
    assert [story[a:b] for a, b in spans] == ["cat"]


def test_the_pretrained_model_recalls_nearly_every_fact(tok):
    recall = fact_recall(load_course_model(PRETRAINED), tok, load_corpus().world)
    assert recall["recall"] > 0.95


# ---------------------------------------------------------------------------
# the gap split, samples, and whole-name probabilities
# ---------------------------------------------------------------------------
STORY = ("This is a story about Mia. One day, she met Leo, who lived in Oakton. She and Leo were friends, and "
         "Leo's pet was a dog. Mia smiled.")


def test_next_logprobs_is_the_last_position_of_a_full_forward(chat_gpt, tok):
    rows = [[tok.eot_id] + tok.encode("Mia had a"), [tok.eot_id] + tok.encode("Hi")]
    got = next_logprobs(chat_gpt, rows, tok.pad_id, chunk=1)
    with torch.no_grad():
        for row, g in zip(rows, got):
            want = torch.log_softmax(chat_gpt(torch.tensor([row]))[0, -1], -1)
            torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-5)


def test_continuation_probs_chains_token_probabilities_and_brackets_when_pruned(chat_gpt, tok):
    prefixes = [[tok.eot_id] + tok.encode("This is a story about"), [tok.eot_id]]
    cands = [tok.encode(" " + n) for n in ("Mia", "Leo", "Theo", "Umar")]
    lower, upper = continuation_probs(chat_gpt, prefixes, cands, tok.pad_id)
    for i, p in enumerate(prefixes):
        for j, c in enumerate(cands):
            with torch.no_grad():
                logits = chat_gpt(torch.tensor([p + c[:-1]]))[0, len(p) - 1:]  # the logits that predict c
            want = math.exp(float(token_logprobs(logits[None], torch.tensor([c]))[0].sum()))
            assert lower[i, j] == pytest.approx(want, rel=1e-4) and upper[i, j] == lower[i, j]
    lo, up = continuation_probs(chat_gpt, prefixes, cands, tok.pad_id, min_prob=1e-3)  # an untrained model: pruned
    assert (lo <= lower + 1e-12).all() and (up >= lower - 1e-12).all() and (lo < up).any()


def test_continuation_probs_needs_prefix_free_candidates(chat_gpt, tok):
    with pytest.raises(ValueError, match="prefix-free"):
        continuation_probs(chat_gpt, [[tok.eot_id]], [[5, 6], [5, 6, 7]], tok.pad_id)


def test_name_slots_find_sentence_starts_and_the_friends_names():
    world = World(0)
    slots = name_slots(STORY, world)
    assert [STORY[o:o + 5] for o in slots["hero"]] == [" One ", " She ", " Mia "]
    assert [STORY[o:o + 4] for o in slots["friend"]] == [" Leo", " Leo", " Leo"]


def test_grammar_hero_prob_follows_the_templates():
    body = sum(p for t, p in BODY if t.startswith("{name}"))
    closing = sum(p for t, p in CLOSINGS if t.startswith("{name}"))
    assert grammar_hero_prob(0) == pytest.approx(body)  # every story has 2 or more body sentences
    assert grammar_hero_prob(max(dict(BODY_LENGTHS))) == pytest.approx(closing)  # the longest story: closing next
    with pytest.raises(ValueError, match="no story"):
        grammar_hero_prob(99)


def test_grammatical_is_the_form_true_is_the_facts():
    corpus = load_corpus()
    world = corpus.world
    assert all(is_grammatical(s, world) and is_true_story(s, world) for s in corpus.val[:50])
    mia = world.by_name["Mia"]
    other = next(v for v in ("cat", "dog") if v != mia.facts["pet"])
    false = f"This is a story about Mia. She had a {other}. He had a {other}. The end."
    assert is_grammatical(false, world) and not is_true_story(false, world)
    assert not is_grammatical("This is a story about Mia. The end.", world)  # too short
    assert not is_grammatical("This is a story about Mia. She had a unicorn. She smiled. The end.", world)
    assert story_shares([corpus.val[0], false], world) == {"grammatical": 1.0, "true": 0.5}
    with pytest.raises(ValueError, match="at least one story"):
        story_shares([], world)


def test_story_probe_marks_exactly_the_fact_words(tok):
    model = make_gpt(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, d_model=32, n_head=2))  # room for stories
    corpus = load_corpus()
    probe = story_probe(tok, corpus, n_stories=5)
    for story, seq, mark in zip(corpus.val, probe.seqs, probe.is_fact):
        marked = "".join(tok.decode([t]) for t, m in zip(seq[1:], mark) if m)
        assert marked.replace(" ", "") == "".join(story[a:b] for a, b in fact_spans(story))
    split = gap_split(model, probe)
    nats = token_nats(model, probe.seqs, tok.pad_id)
    assert split["loss"] == pytest.approx(sum(float(n.sum()) for n in nats) / probe.n_tokens)
    assert split["gap_nats"] == pytest.approx(split["fact_nats"] + split["other_nats"])
    assert split["floor"] == pytest.approx(sum(corpus.val_nats[:5]) / probe.n_tokens)


def test_sample_stories_are_seeded_and_cut_at_their_end(chat_gpt, tok):
    a, b = sample_stories(chat_gpt, tok, 3, seed=4), sample_stories(chat_gpt, tok, 3, seed=4)
    assert a == b and len(a) == 3 and all("<|endoftext|>" not in s for s in a)


@pytest.mark.slow
def test_the_pretrained_model_knows_who_the_story_is_about(tok):
    model, corpus = load_course_model(PRETRAINED), load_corpus()
    hero = name_probs(model, tok, corpus, n_stories=6, where="hero")
    friend = name_probs(model, tok, corpus, n_stories=6, where="friend")
    assert hero["wrong_lower"] <= hero["wrong"] < 0.05 and abs(hero["hero"] - hero["grammar_hero"]) < 0.1
    assert friend["wrong_lower"] > 0.8 and friend["grammar_wrong"] == 1.0  # the control: other names belong here
    with pytest.raises(ValueError, match="'hero' or 'friend'"):
        name_probs(model, tok, corpus, where="villain")
