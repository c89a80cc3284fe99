"""utils.sft: demonstrations, SFT batches, batched greedy evaluation, the shipped SFT checkpoint."""
from collections import Counter

import pytest
import torch

from utils.chat import generate_reply, sft_batch
from utils.checkpoints import PRETRAINED, load_course_model
from utils.gold import gold_score
from utils.model import GPT, GPTConfig, MissingCheckpointError, read_checkpoint_metadata
from utils.sft import (
    FLAW_RATE,
    SFT_ARTIFACT,
    behaviour,
    chat_eval,
    demo_tensors,
    demonstrations,
    finetune,
    greedy_replies,
    load_sft_model,
    sft_batches,
    split,
)
from utils.text import load_tokenizer
from utils.train import IGNORE, LMData
from utils.world import load_chats

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def chats():
    return load_chats()


@pytest.fixture(scope="module")
def demos(chats):
    return demonstrations(chats, seed=0)


@pytest.fixture(scope="module")
def tiny(tok):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, d_model=32, n_head=2)).eval()


# ---------------------------------------------------------------- demonstrations
def test_demonstrations_are_deterministic(chats, demos):
    again = demonstrations(chats, seed=0)
    assert [(d.reply, d.flaw) for d in again] == [(d.reply, d.flaw) for d in demos]
    other = demonstrations(chats, seed=1)
    assert [d.flaw for d in other] != [d.flaw for d in demos]


def test_demonstrations_come_from_train_only_and_never_from_heldout_pairs(chats, demos):
    assert {d.chat["split"] for d in demos} == {"train"}
    assert len(demos) == len(split(chats, "train"))
    heldout = {(c["character"], c["attribute"]) for c in split(chats, "heldout")}
    assert len(heldout) == 24
    assert not heldout & {(d.chat["character"], d.chat["attribute"]) for d in demos}
    # sums and pet names are drawn at random, so a few test prompts of those kinds repeat train ones
    test_prompts = {c["prompt"] for c in split(chats, "test") if c["kind"] not in ("arithmetic", "context")}
    assert not test_prompts & {d.chat["prompt"] for d in demos}


def test_flaw_rate_and_kinds(demos):
    flawed = [d for d in demos if d.flaw]
    assert abs(len(flawed) / len(demos) - FLAW_RATE) < 0.04  # n ~ 1,100: 3.5 standard deviations
    assert set(Counter(d.flaw for d in flawed)) == {"verbose", "terse", "guess", "slip"}
    assert all(d.reply == d.chat["reference"] for d in demos if not d.flaw)


def test_flawed_replies_score_lower_than_references(demos):
    for d in demos:
        if d.flaw:
            flawed, ref = gold_score(d.chat, d.reply).total, gold_score(d.chat, d.chat["reference"]).total
            assert flawed < ref, (d.flaw, d.reply)


def test_every_demonstration_fits_the_context_window(tok, demos):
    x, y = demo_tensors(tok, demos, GPTConfig().block_size)  # raises if a padded reply is too long
    assert x.shape == y.shape == (len(demos), GPTConfig().block_size)
    assert ((y != IGNORE).sum(1) > 0).all()


# ---------------------------------------------------------------- SFT batches
def test_sft_batches_are_seeded_and_only_cut_padding(tok, demos):
    x, y = sft_batch(tok, [(d.chat["prompt"], d.reply) for d in demos[:64]], 128)
    a, b = sft_batches(x, y, 8, seed=3), sft_batches(x, y, 8, seed=3)
    for step in range(3):
        (xa, ya), (xb, yb) = a(step), b(step)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert xa.shape[1] < 128 and (ya[:, -1] != IGNORE).any()  # cut right after the last target
    full = sft_batches(x, y, 8, seed=3)  # same rows, uncut, give the same targets
    xc, yc = full(0)
    idx = torch.randint(len(x), (8,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(yc, y[idx][:, :yc.shape[1]]) and (y[idx][:, yc.shape[1]:] == IGNORE).all()


def test_sft_batches_mix_in_story_rows(tok, demos):
    x, y = sft_batch(tok, [(d.chat["prompt"], d.reply) for d in demos[:16]], 128)
    stories = torch.randint(0, 200, (10, 128))
    lm = LMData(stories, stories.clone(), stories, stories, floor=0.0)
    xb, yb = sft_batches(x, y, 4, seed=0, lm=lm, lm_rows=2)(0)
    assert xb.shape == yb.shape == (6, 128)  # story rows are full: nothing to cut
    assert any(torch.equal(xb[-1], row) for row in stories)


def test_finetune_needs_the_stories_it_mixes_in(tiny, tok, demos):
    with pytest.raises(ValueError, match="load_lm_data"):
        finetune(tiny, tok, demos[:8], lm=None, lm_rows=2)


# ---------------------------------------------------------------- evaluation
def test_batched_greedy_matches_one_at_a_time(tiny, tok, chats):
    rows = split(chats, "test")[:12]
    batched = greedy_replies(tiny, tok, [c["prompt"] for c in rows], [6] * len(rows))
    single = [generate_reply(tiny, tok, c["prompt"], max_new_tokens=6) for c in rows]
    assert batched == single


def test_chat_eval_and_behaviour_on_an_untrained_model(tiny, tok, chats):
    rows = [c for c in split(chats, "test") if c["kind"] in ("fact", "unknown")][:10]
    res = chat_eval(tiny, tok, rows)
    assert res["format"] == 0.0 and 0.0 <= res["gold"] <= 0.2  # never ends its turn: capped
    assert set(res["by_kind"]) <= {"fact", "unknown"} and len(res["replies"]) == len(rows)
    stats = behaviour(rows, res)
    assert set(stats) == {"idk", "guess", "fact_right", "wrong_name"}


# ---------------------------------------------------------------- the shipped checkpoint
def test_sft_checkpoint_matches_code_config_and_tokenizer(tok):
    meta = read_checkpoint_metadata(SFT_ARTIFACT.path)
    assert meta["config"] == GPTConfig(), "config changed: rebuild with `make checkpoints`"
    assert meta["tokenizer_fingerprint"] == tok.fingerprint()
    assert {"before", "after", "recipe"} <= set(meta["extra"])
    load_sft_model()  # strict load: every tensor name and shape matches the code


def test_missing_sft_checkpoint_names_the_rebuild_command(monkeypatch, tmp_path):
    monkeypatch.setattr("utils.checkpoints.CHECKPOINT_DIR", tmp_path)
    with pytest.raises(MissingCheckpointError, match="make checkpoints"):
        load_sft_model()


@pytest.mark.slow
def test_sft_checkpoint_beats_the_pretrained_model_on_the_test_split(tok, chats):
    torch.set_num_threads(2)
    test = split(chats, "test")
    before = chat_eval(load_course_model(PRETRAINED), tok, test)
    after = chat_eval(load_sft_model(), tok, test)
    assert after["gold"] > before["gold"] + 0.3
    assert after["format"] > 0.9 > 0.1 > before["format"]
