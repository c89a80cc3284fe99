"""utils.train: the one loop -- its schedule, optimizer groups, one step, determinism, evaluation."""
import pytest
import torch

from utils.logprobs import mean_nll
from utils.model import GPT, GPTConfig
from utils.repro import seed_everything
from utils.train import (
    TrainConfig,
    eval_loss,
    lm_loss,
    lr_at,
    make_optimizer,
    random_batches,
    train,
    train_step,
)

CFG = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, d_model=16)


@pytest.fixture
def easy_data():
    """A fully predictable sequence: each token is the previous one + 1 (mod 16)."""
    x = torch.arange(8).repeat(32, 1) % 16  # (32, 8)
    return x, (x + 1) % 16


def test_schedule_warms_up_then_decays_to_the_floor_ratio():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    lrs = [lr_at(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_weight_decay_only_on_matrices():
    opt = make_optimizer(GPT(CFG), TrainConfig(weight_decay=0.1))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() >= 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() < 2 for p in plain["params"])


def test_one_step_lowers_the_loss_on_its_batch_and_clips(easy_data):
    x, y = easy_data
    seed_everything(0)
    model = GPT(CFG)
    opt = make_optimizer(model, TrainConfig())
    before = lm_loss(model, x, y).item()
    first = train_step(model, opt, lm_loss, x, y, lr=1e-2, grad_clip=1.0, bf16=False)
    assert first == pytest.approx(before, rel=1e-6)  # the step reports the loss before its update
    assert lm_loss(model, x, y).item() < before
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))  # gradients after clipping
    assert norm <= 1.0 + 1e-5


def test_training_lowers_the_loss_and_is_deterministic(easy_data):
    x, y = easy_data

    def run():
        seed_everything(0)
        model = GPT(CFG)
        hist = train(model, random_batches(x, y, 8, seed=0), TrainConfig(steps=60, lr=1e-2, eval_every=30),
                     evaluate=lambda m: {"val_loss": eval_loss(m, x, y)}, progress=False)
        return model, hist
    (m1, h1), (_, h2) = run(), run()
    assert h1.train_loss == h2.train_loss
    assert h1.eval[-1]["val_loss"] < 0.3 * h1.train_loss[0]
    assert h1.tokens == 60 * 8 * 8 and len(h1.eval) == 2 and h1.eval_step == [30, 60]
    assert lm_loss(m1, x, y).item() == pytest.approx(h1.eval[-1]["val_loss"], rel=1e-4)
    assert not m1.training  # handed back in eval mode


def test_eval_loss_is_exact_over_uneven_batches(easy_data):
    x, y = easy_data
    model = GPT(CFG).eval()
    with torch.no_grad():
        assert eval_loss(model, x, y, batch_size=5) == pytest.approx(lm_loss(model, x, y).item(), rel=1e-5)


def test_random_batches_are_seeded():
    x = torch.arange(100)[:, None]
    a, b = random_batches(x, x, 4, seed=1), random_batches(x, x, 4, seed=1)
    assert all(torch.equal(a(s)[0], b(s)[0]) for s in range(3))
    assert not torch.equal(random_batches(x, x, 4, seed=2)(0)[0], random_batches(x, x, 4, seed=1)(0)[0])


def test_train_step_is_forward_loss_backward_clip_adamw(easy_data):
    """Notebook 04 writes the step out by hand; it must be exactly train_step, bit for bit."""
    x, y = easy_data
    cfg = TrainConfig()

    def run(by_hand: bool, lr_scale: float = 1.0):
        seed_everything(0)
        model = GPT(CFG)
        opt = make_optimizer(model, cfg)
        for step in range(3):
            lr = lr_scale * lr_at(step, cfg)
            if by_hand:
                for group in opt.param_groups:
                    group["lr"] = lr
                loss = mean_nll(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            else:
                train_step(model, opt, lm_loss, x, y, lr, cfg.grad_clip, bf16=False)
        return list(model.parameters())
    same = lambda a, b: all(torch.equal(p, q) for p, q in zip(a, b))  # noqa: E731
    assert same(run(True), run(False))
    assert not same(run(True), run(False, lr_scale=1.01))  # the comparison notices a 1% change
