"""utils.logprobs: the one log-probability primitive, against torch's cross-entropy."""
import pytest
import torch
import torch.nn.functional as F

from utils.logprobs import IGNORE, mean_nll, token_logprobs, total_nll


@pytest.fixture
def logits_and_targets():
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(4, 10, 50, generator=gen)).requires_grad_()
    targets = torch.randint(0, 50, (4, 10), generator=gen)
    targets[:, 7:] = IGNORE  # padding
    targets[1, :3] = IGNORE  # a prompt
    return logits, targets


def test_token_logprobs_are_minus_per_token_cross_entropy(logits_and_targets):
    logits, targets = logits_and_targets
    lp = token_logprobs(logits, targets)
    ce = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")  # (B, T)
    assert lp.shape == targets.shape
    torch.testing.assert_close(lp, -ce)
    assert (lp[targets == IGNORE] == 0).all() and (lp[targets != IGNORE] < 0).all()


def test_mean_nll_is_cross_entropy_with_the_same_gradient(logits_and_targets):
    logits, targets = logits_and_targets
    ours = mean_nll(logits, targets)
    ref = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
    torch.testing.assert_close(ours, ref)
    (g_ours,), (g_ref,) = torch.autograd.grad(ours, logits), torch.autograd.grad(ref, logits)
    assert torch.equal(g_ours, g_ref)  # bit for bit: training on either gives the same model


def test_total_nll_adds_up_to_the_mean(logits_and_targets):
    logits, targets = logits_and_targets
    nats, n = total_nll(logits, targets)
    assert n == int((targets != IGNORE).sum())
    assert nats / n == pytest.approx(mean_nll(logits, targets).item(), rel=1e-6)


def test_a_sure_prediction_costs_nothing_and_a_wrong_one_a_lot():
    logits = torch.full((1, 2, 5), -30.0)
    logits[0, :, 2] = 30.0  # certain: token 2
    lp = token_logprobs(logits, torch.tensor([[2, 3]]))
    assert lp[0, 0].abs() < 1e-6 and lp[0, 1] < -50


def test_precision_bf16_is_upcast_float64_is_kept():
    logits = torch.randn(1, 3, 8)
    targets = torch.tensor([[1, 2, 3]])
    assert token_logprobs(logits.bfloat16(), targets).dtype == torch.float32
    assert token_logprobs(logits.double(), targets).dtype == torch.float64


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"logits \(2, 3, 8\) -> targets \(2, 3\), got targets \(2, 4\)"):
        token_logprobs(torch.zeros(2, 3, 8), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="no target token is counted"):
        mean_nll(torch.zeros(1, 2, 8), torch.full((1, 2), IGNORE))
