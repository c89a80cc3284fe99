"""utils.pretrain: packing stories, the floor per token, the recipe, and a scaling point."""
import pytest
import torch

from utils.logprobs import IGNORE
from utils.model import GPTConfig
from utils.pretrain import PRETRAIN, SCALING_SIZES, load_lm_data, pack_stories, scaling_point, split_rows
from utils.world import floor_per_token, load_corpus

EOT, PAD = 98, 99


def test_packing_keeps_stories_whole_and_marks_padding():
    stories = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
    rows = pack_stories(stories, block_size=8, eot_id=EOT, pad_id=PAD, seed=0)
    assert rows.shape[1] == 9 and (rows[:, 0] == EOT).all()
    flat = [t for r in rows.tolist() for t in r if t != PAD]
    pieces, cur = [], []
    for t in flat[1:]:
        if t == EOT:
            pieces.append(cur) if cur else None
            cur = []
        else:
            cur.append(t)
    assert sorted(pieces) == sorted(stories)
    x, y = split_rows(rows, PAD)
    assert ((y == IGNORE) == (rows[:, 1:] == PAD)).all() and torch.equal(x, rows[:, :-1])


def test_too_long_story_gives_a_clear_error():
    with pytest.raises(ValueError, match="longer than block_size"):
        pack_stories([list(range(20))], block_size=8, eot_id=EOT, pad_id=PAD)


@pytest.fixture(scope="module")
def small_corpus():
    corpus = load_corpus()
    corpus.train, corpus.val = corpus.train[:400], corpus.val[:100]
    corpus.train_nats, corpus.val_nats = corpus.train_nats[:400], corpus.val_nats[:100]
    return corpus


def test_lm_data_counts_every_story_token_and_its_end(tok, small_corpus):
    data = load_lm_data(tok, 128, corpus=small_corpus)
    n_val = sum(len(tok.encode(s)) + 1 for s in small_corpus.val)  # + the <|endoftext|> after each
    assert int((data.y_val != IGNORE).sum()) == n_val
    assert data.floor == pytest.approx(floor_per_token(small_corpus.val_nats, n_val))
    assert data.x_train.shape[1] == 128 and 0.3 < data.floor < 0.6


def test_the_recipe_is_the_shipped_one():
    assert (PRETRAIN.train.steps, PRETRAIN.batch_size, PRETRAIN.seed) == (1000, 32, 0)
    assert PRETRAIN.train.bf16 is None  # decided by the CPU when training starts


@pytest.mark.slow
def test_a_scaling_point_is_deterministic_and_learns(tok, small_corpus):
    data = load_lm_data(tok, GPTConfig().block_size, corpus=small_corpus)
    a, b = scaling_point("tiny", 30, data), scaling_point("tiny", 30, data)
    assert a == b
    assert a["params"] < sum(SCALING_SIZES["tiny"].values()) * 10_000 and a["flops"] == 6 * a["params"] * a["tokens"]
    assert a["val_loss"] < 5.5  # measured 4.85 after 30 steps; an untrained model scores ln 512 = 6.24
