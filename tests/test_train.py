"""The training loop, its schedule and the packing of stories into blocks."""
import pytest
import torch

from utils import seed_everything
from utils.model import GPT, GPTConfig
from utils.train import (
    IGNORE,
    TrainConfig,
    eval_loss,
    lm_loss,
    lr_at,
    pack_stories,
    random_batches,
    split_rows,
    train,
)

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


def test_schedule_warms_up_then_decays_to_the_floor_ratio():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    lrs = [lr_at(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_training_lowers_the_loss_and_is_deterministic():
    torch.set_num_threads(1)
    cfg = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, d_model=16)
    x = torch.arange(8).repeat(32, 1) % 16  # an easy, fully predictable sequence
    y = (x + 1) % 16

    def run():
        seed_everything(0)
        model = GPT(cfg)
        hist = train(model, random_batches(x, y, 8, seed=0), TrainConfig(steps=60, lr=1e-2, eval_every=30),
                     evaluate=lambda m: {"val_loss": eval_loss(m, x, y)}, progress=False)
        return model, hist
    (m1, h1), (_, h2) = run(), run()
    assert h1.train_loss == h2.train_loss
    assert h1.eval[-1]["val_loss"] < 0.3 * h1.train_loss[0]
    assert h1.tokens == 60 * 8 * 8 and len(h1.eval) == 2
    assert lm_loss(m1, x, y).item() == pytest.approx(h1.eval[-1]["val_loss"], rel=1e-4)
