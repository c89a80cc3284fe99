"""utils.pretrain: packing stories, the floor per token, the recipe, the FLOPs convention and MFU, and the
scaling sweep (its grid, one point, interpolation at equal compute)."""
import math

import pytest
import torch

from utils.logprobs import IGNORE
from utils.model import GPT, GPTConfig
from utils.pretrain import (
    PRETRAIN,
    SCALING_BUDGETS,
    SCALING_SIZES,
    compute_optimal,
    load_lm_data,
    matmul_params,
    matmul_peak_gflops,
    mfu,
    pack_stories,
    reducible_loss_at,
    scaling_point,
    scaling_runs,
    split_rows,
    train_flops_per_token,
)
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


@pytest.mark.parametrize("dims", [{}, *SCALING_SIZES.values(), dict(n_layer=1, n_head=2, d_model=8, bias=False)])
def test_flops_count_the_matrices_a_token_is_multiplied_with(dims):
    cfg = GPTConfig(**dims)
    model = GPT(cfg)  # counted from the model: every 2-D weight but the position table (the head is tied)
    n = sum(p.numel() for name, p in model.named_parameters() if p.dim() == 2 and name != "pos_emb.weight")
    assert matmul_params(cfg) == n
    assert train_flops_per_token(cfg) == 6 * n + 12 * cfg.n_layer * cfg.block_size * cfg.d_model


def test_mfu_is_achieved_over_peak_flops():
    cfg = GPTConfig()
    assert mfu(1000.0, cfg, peak_gflops=train_flops_per_token(cfg) * 1000 / 1e9) == pytest.approx(1.0)
    assert mfu(500.0, cfg, peak_gflops=train_flops_per_token(cfg) * 1000 / 1e9) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="peak_gflops"):
        mfu(1000.0, cfg, peak_gflops=0)
    assert matmul_peak_gflops(sizes=(64,), reps=1) > 0


def test_the_sweep_compares_sizes_at_equal_compute():
    runs = scaling_runs()
    tokens_per_step = PRETRAIN.batch_size * GPTConfig().block_size
    spent = {}
    for size, steps in runs:
        per_step = train_flops_per_token(GPTConfig(**SCALING_SIZES[size])) * tokens_per_step
        budget = min(SCALING_BUDGETS, key=lambda b: abs(math.log(b / (steps * per_step))))
        assert abs(steps * per_step - budget) <= per_step / 2, f"{size} x {steps} steps does not spend a budget"
        assert steps >= 90, f"{size}: {steps} steps is too few for a warm-up and a decay"
        spent.setdefault(budget, []).append(size)
    assert sorted(spent) == sorted(SCALING_BUDGETS) and all(len(s) >= 2 for s in spent.values())
    sizes = [matmul_params(GPTConfig(**d)) for d in SCALING_SIZES.values()]
    assert sizes == sorted(sizes), "SCALING_SIZES goes from small to large"


def _points(size, flops_losses):
    return [{"size": size, "flops": f, "val_loss": loss} for f, loss in flops_losses]


def test_reducible_loss_is_interpolated_in_log_log_and_never_extrapolated():
    points = _points("a", [(1e10, 1.5), (4e10, 0.75)])  # reducible 1.0 -> 0.25: slope -1 in log-log
    assert reducible_loss_at(points, "a", 1e10, floor=0.5) == pytest.approx(1.0)
    assert reducible_loss_at(points, "a", 2e10, floor=0.5) == pytest.approx(0.5)
    assert reducible_loss_at(points, "a", 4e10 * 1.005, floor=0.5) == pytest.approx(0.25)  # rounding of steps
    with pytest.raises(ValueError, match="outside its points"):
        reducible_loss_at(points, "a", 1e11, floor=0.5)
    with pytest.raises(ValueError, match="no sweep points"):
        reducible_loss_at(points, "b", 1e10, floor=0.5)


def test_compute_optimal_picks_the_lowest_loss_at_each_budget():
    points = _points("small", [(1e10, 1.0), (4e10, 0.8)]) + _points("big", [(2e10, 1.5), (4e10, 0.6)])
    rows = compute_optimal(points, floor=0.5, budgets=(1e10, 2e10, 4e10))
    assert [r["best"] for r in rows] == ["small", "small", "big"]
    assert set(rows[0]["losses"]) == {"small"}  # "big" was not trained that small


@pytest.mark.slow
def test_a_scaling_point_is_deterministic_and_learns(tok, small_corpus):
    data = load_lm_data(tok, GPTConfig().block_size, corpus=small_corpus)
    a, b = scaling_point("tiny", 30, data), scaling_point("tiny", 30, data)
    assert a == b
    cfg = GPTConfig(**SCALING_SIZES["tiny"])
    assert a["tokens"] == 30 * PRETRAIN.batch_size * cfg.block_size
    assert a["params"] == matmul_params(cfg) and a["flops"] == train_flops_per_token(cfg) * a["tokens"]
    assert a["val_loss"] < 5.5  # measured 4.85 after 30 steps; an untrained model scores ln 512 = 6.24
    with pytest.raises(ValueError, match="unknown size"):
        scaling_point("huge", 30, data)
