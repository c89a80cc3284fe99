"""utils.induction: repeated segments, the two copies' losses, the prefix-matching score, the model."""
import math

import pytest
import torch
import torch.nn.functional as F

from utils.induction import (
    AttentionOnlyTransformer,
    InductionConfig,
    best_prefix_score,
    first_copy_loss,
    loss_per_position,
    phase_change_step,
    prefix_matching_score,
    repeated_segments,
    second_copy_loss,
    train_induction,
)

V, L = 32, 6  # a small vocabulary and segment: T = 12


def tiny_model(n_layer=2, seed=0):
    torch.manual_seed(seed)
    return AttentionOnlyTransformer(V, d_model=16, n_layer=n_layer, n_head=2, block_size=2 * L).eval()


def segments(batch=4, seed=0):
    return repeated_segments(batch, L, V, torch.Generator().manual_seed(seed))


class PerfectCopier(torch.nn.Module):
    """Knows the answer: huge logit on the token one segment back (what an ideal induction head outputs)."""

    def forward(self, idx):
        B, T = idx.shape
        logits = torch.zeros(B, T, V)
        nxt = idx[:, (torch.arange(T) + 1 - L).clamp(min=0)]  # (B, T): token at t+1-L, = token t+1 in copy 2
        return logits.scatter(2, nxt[..., None], 50.0)


def test_segments_shape_dtype_range_and_copy():
    x = segments(5)
    assert x.shape == (5, 2 * L) and x.dtype == torch.long
    assert int(x.min()) >= 0 and int(x.max()) < V
    assert torch.equal(x[:, L:], x[:, :L])
    assert not torch.equal(x[0], x[1])  # rows differ
    assert torch.equal(x, segments(5))  # the generator makes it reproducible


def test_prefix_matching_score_perfect_and_uniform():
    T, nh = 2 * L, 3
    perfect = torch.zeros(2, nh, T, T)
    for q in range(L, T):
        perfect[:, :, q, q - L + 1] = 1.0  # right after the earlier occurrence
    torch.testing.assert_close(prefix_matching_score(perfect, L), torch.ones(nh))
    uniform = torch.full((2, nh, T, T), 1.0 / T)
    torch.testing.assert_close(prefix_matching_score(uniform, L), torch.full((nh,), 1.0 / T))
    causal = torch.ones(T, T).tril()
    causal = (causal / causal.sum(-1, keepdim=True)).expand(2, nh, T, T)  # uniform over the past
    expected = sum(1.0 / (q + 1) for q in range(L, T)) / L
    torch.testing.assert_close(prefix_matching_score(causal, L), torch.full((nh,), expected))


def test_prefix_matching_score_per_head():
    T = 2 * L
    w = torch.full((1, 2, T, T), 1.0 / T)
    w[0, 1] = 0.0
    w[0, 1, torch.arange(L, T), torch.arange(1, L + 1)] = 1.0  # only head 1 is an induction head
    score = prefix_matching_score(w, L)
    assert score[1] == 1.0 and score[0] < 0.2


def test_losses_of_a_perfect_copier():
    x = segments(8)
    assert second_copy_loss(PerfectCopier(), x).item() < 1e-6
    assert first_copy_loss(PerfectCopier(), x).item() > 10  # confidently wrong on random tokens


def test_loss_per_position_is_cross_entropy():
    model, x = tiny_model(), segments(3)
    with torch.no_grad():
        lp = loss_per_position(model, x)
        ref = F.cross_entropy(model(x[:, :-1]).reshape(-1, V), x[:, 1:].reshape(-1), reduction="none")
    assert lp.shape == (3, 2 * L - 1)
    torch.testing.assert_close(lp.flatten(), ref)
    torch.testing.assert_close(second_copy_loss(model, x), lp[:, L:].mean())
    torch.testing.assert_close(first_copy_loss(model, x), lp[:, : L - 1].mean())


def test_untrained_model_is_near_uniform():
    with torch.no_grad():
        loss = second_copy_loss(tiny_model(), segments(16)).item()
    assert abs(loss - math.log(V)) < 0.5


@pytest.mark.parametrize("n_layer", [1, 2])
def test_model_shapes_and_weights(n_layer):
    model, x = tiny_model(n_layer), segments(3)
    with torch.no_grad():
        logits = model(x)
        logits2, weights = model(x, return_weights=True)
    assert logits.shape == (3, 2 * L, V)
    torch.testing.assert_close(logits, logits2, atol=1e-5, rtol=1e-4)  # fused and from-scratch paths agree
    assert len(weights) == n_layer
    for w in weights:
        assert w.shape == (3, 2, 2 * L, 2 * L)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 2 * L))
        assert torch.all(w.triu(1) == 0)  # no weight on the future
    score, layer, head = best_prefix_score(model, x)
    assert 0 <= score <= 1 and 0 <= layer < n_layer and 0 <= head < 2


def test_model_is_causal():
    model, x = tiny_model(), segments(2)
    changed = x.clone()
    changed[:, 7] = (changed[:, 7] + 1) % V
    with torch.no_grad():
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_too_long_input_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        tiny_model()(torch.zeros(1, 2 * L + 1, dtype=torch.long))


def test_train_induction_runs_and_records():
    cfg = InductionConfig(vocab_size=V, seg_len=L, min_seg_len=4, max_seg_len=L, d_model=16, n_head=2,
                          batch_size=8, eval_every=5, eval_batch=8)
    model, hist = train_induction(2, seed=0, steps=10, cfg=cfg, progress=False)
    assert hist.eval_step == [5, 10] and len(hist.train_loss) == 10
    assert set(hist.eval[0]) == {"second_copy_loss", "first_copy_loss", "prefix_score"}
    assert not model.training
    assert phase_change_step(hist, V, fraction=10.0) == 5  # every loss is below 10 ln V
    assert phase_change_step(hist, V, fraction=0.0) is None


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_the_phase_change_comes_on_every_seed(seed):
    """InductionConfig's claim and notebook 05's shape, on five seeds (about 15 s each, one thread):
    the second-copy loss leaves ln(V) in a sudden drop, well inside 1200 steps, and an induction head forms."""
    cfg = InductionConfig()
    _, hist = train_induction(2, seed=seed, steps=1200, progress=False)
    steps = hist.eval_step
    loss = [e["second_copy_loss"] for e in hist.eval]
    score = [e["prefix_score"] for e in hist.eval]
    ln_v = math.log(cfg.vocab_size)
    start = max(s for s, v in zip(steps, loss) if v > 0.8 * ln_v)
    end = next(s for s, v in zip(steps, loss) if v < 0.2 * ln_v)
    assert abs(loss[0] - ln_v) < 0.3 and loss[-1] < 0.8 and score[-1] > 0.6
    assert start >= 200 and end - start <= 300 and end <= 900  # a plateau, then a sudden drop
    assert 400 <= phase_change_step(hist, cfg.vocab_size) <= 650
