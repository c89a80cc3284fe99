"""utils.rlhf: batched reply log-probs, the exact KL and its estimates, group advantages, PPO's
clipped loss and one real update, best-of-n, DPO, and the messages for bad input."""
import copy
import math

import pytest
import torch
from conftest import make_gpt

from utils.chat import reply_logprobs, reply_token_ids
from utils.chats import split
from utils.model import GPTConfig, parameter_checksum
from utils.reward import Answer, RankedPrompt, RewardModel
from utils.rlhf import (
    PPOConfig,
    answer_logprobs,
    best_of_n,
    best_of_n_curve,
    best_of_n_kl,
    dpo_loss,
    dpo_pairs,
    dpo_tensors,
    fit_gao,
    gold_rewards,
    group_advantages,
    kl_k1,
    kl_k3,
    measure_policy,
    penalized,
    per_token_kl,
    ppo_loss,
    ppo_update,
    reward_model_fn,
    rl_prompts,
    rollout,
    score_rollout,
    sequence_logprobs,
    train_dpo,
    train_ppo,
)
from utils.train import TrainConfig, make_optimizer


@pytest.fixture(scope="module")
def cfg(tok):
    """The tiny GPT of the brief: 1 layer, 32 wide, the course's vocabulary and window."""
    return GPTConfig(vocab_size=tok.vocab_size, n_layer=1, d_model=32, n_head=2)


@pytest.fixture
def policy(cfg):
    return make_gpt(cfg, seed=0)


@pytest.fixture
def other(cfg):
    return make_gpt(cfg, seed=1)


@pytest.fixture(scope="module")
def rows(chats):
    """Prompts of different lengths: a short fact, a memory block, a long callback conversation."""
    test = split(chats, "test")
    picked = [next(c for c in test if c.kind == k) for k in ("fact", "memory", "callback", "arithmetic")]
    assert picked[1].memory and not isinstance(picked[2].prompt, str)
    return picked


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- log-probs in one batch
def test_batched_answer_logprobs_equal_reply_logprobs_row_by_row(policy, tok, rows):
    prompts = [*rows, "Where does Mia live?"]  # a plain prompt (no memory) too
    replies = ["Mia lives in Bayside.", "Your cat is called Pixel.", "I don't know.",
               reply_token_ids(tok, "3 plus 4 is 7."), [tok.end_id]]  # text, ids, a bare <|end|>
    out = answer_logprobs(policy, tok, prompts, replies)
    lengths = [len(reply_token_ids(tok, r)) for r in replies]
    assert out.logp.shape == out.mask.shape == (5, max(lengths))
    assert out.logits.shape == (5, max(lengths), tok.vocab_size)
    assert out.mask.sum(1).tolist() == lengths
    for i, (p, r) in enumerate(zip(prompts, replies)):
        memory = getattr(p, "memory", None)
        alone = reply_logprobs(policy, tok, getattr(p, "prompt", p), r, memory)  # (L_i,)
        torch.testing.assert_close(out.logp[i, :lengths[i]], alone, atol=1e-5, rtol=1e-5)
    assert (out.logp[~out.mask] == 0).all()


def test_answer_logprobs_recompute_the_sampled_logprobs(policy, tok, rows):
    ro = rollout(policy, tok, rows, n=3, max_new_tokens=6, generator=gen())
    assert len(ro.replies) == len(ro.chats) == 12 and ro.chats[:3] == [rows[0]] * 3  # prompt-major
    out = answer_logprobs(policy, tok, ro.chats, [r.ids for r in ro.replies])
    for i, r in enumerate(ro.replies):
        torch.testing.assert_close(out.logp[i, :len(r.ids)], r.token_logprobs, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- KL
def test_full_kl_equals_the_builtin_is_never_negative_and_zero_for_one_model(policy, other, tok, rows):
    replies = ["Mia lives in Bayside.", "Your cat is called Pixel.", "Hi.", "7."]
    a = answer_logprobs(policy, tok, rows, replies)
    b = answer_logprobs(other, tok, rows, replies)
    kl = per_token_kl(a.logits, b.logits, a.mask)  # (N, L)
    brute = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=a.logits),
                                              torch.distributions.Categorical(logits=b.logits))  # (N, L)
    torch.testing.assert_close(kl, brute * a.mask, atol=1e-6, rtol=1e-5)
    assert (kl >= 0).all() and (kl[a.mask] > 0).all() and (kl[~a.mask] == 0).all()
    assert (per_token_kl(a.logits, a.logits, a.mask) == 0).all()


def test_k1_can_be_negative_on_a_sample_where_the_full_kl_is_not():
    torch.manual_seed(0)
    pol, ref = torch.randn(1, 1, 50), torch.randn(1, 1, 50)  # (N, L, V)
    y = (ref.log_softmax(-1) - pol.log_softmax(-1)).argmax(-1)  # (1, 1): the token the reference likes more
    logp, ref_logp = pol.log_softmax(-1).gather(-1, y[..., None])[..., 0], ref.log_softmax(-1).gather(
        -1, y[..., None])[..., 0]  # (1, 1)
    assert kl_k1(logp, ref_logp).item() < 0
    assert kl_k3(logp, ref_logp).item() >= 0
    assert per_token_kl(pol, ref, torch.ones(1, 1, dtype=torch.bool)).item() > 0


def test_k1_and_k3_average_to_the_exact_kl():
    torch.manual_seed(0)
    pol, ref = torch.randn(20), torch.randn(20) * 0.5  # one position, vocabulary 20
    exact = per_token_kl(pol[None, None], ref[None, None], torch.ones(1, 1, dtype=torch.bool)).item()
    y = torch.multinomial(pol.softmax(-1), 200_000, replacement=True, generator=gen())  # samples from pi
    logp, ref_logp = pol.log_softmax(-1)[y], ref.log_softmax(-1)[y]
    k1, k3 = kl_k1(logp, ref_logp), kl_k3(logp, ref_logp)
    assert k1.mean().item() == pytest.approx(exact, rel=0.03)
    assert k3.mean().item() == pytest.approx(exact, rel=0.03)
    assert (k3 >= 0).all() and (k1 < 0).any()


# ---------------------------------------------------------------- advantages and the loss
def test_group_advantages_sum_to_zero_and_an_equal_group_gives_zero():
    r = torch.tensor([1.0, 0.0, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3])  # two prompts x 4 replies
    adv = group_advantages(r, n=4)
    torch.testing.assert_close(adv.view(2, 4).sum(1), torch.zeros(2))
    assert (adv[4:] == 0).all()
    torch.testing.assert_close(adv[:4], torch.tensor([0.5, -0.5, 0.0, 0.0]))
    scaled = group_advantages(r, n=4, scale_by_std=True)
    assert scaled[:4].std().item() == pytest.approx(1.0, abs=1e-4) and (scaled[4:] == 0).all()


def test_an_equal_group_gives_zero_gradient(policy, tok, rows):
    out = answer_logprobs(policy, tok, rows[:1] * 4, ["A.", "B b.", "C.", "Dd."])
    adv = group_advantages(torch.full((4,), 0.7), n=4)
    ppo_loss(out.logp, out.logp.detach(), adv, out.mask).backward()
    assert all(p.grad is None or (p.grad == 0).all() for p in policy.parameters())


def test_ppo_gradient_at_ratio_one_is_the_plain_policy_gradient(policy, tok, rows):
    replies = ["Mia lives in Bayside.", "No.", "Your cat is Pixel.", "7."]
    adv = torch.tensor([1.0, -2.0, 0.5, 0.25])
    params = list(policy.parameters())

    def grads(loss):
        return torch.autograd.grad(loss, params, allow_unused=True)

    out = answer_logprobs(policy, tok, rows, replies)
    ppo = grads(ppo_loss(out.logp, out.logp.detach(), adv, out.mask, clip=0.2))
    out = answer_logprobs(policy, tok, rows, replies)
    reinforce = grads(-(adv * out.logp.sum(1)).mean())  # REINFORCE: -mean A * grad log pi(y|x)
    for g, h in zip(ppo, reinforce):
        torch.testing.assert_close(g, h, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("advantage, ratio, moves", [
    (1.0, 1.1, True), (1.0, 1.3, False),  # A > 0: push up until 1 + clip, then stop
    (1.0, 0.5, True),  # ... but a ratio that fell below 1 - clip is still pushed back up
    (-1.0, 0.9, True), (-1.0, 0.7, False),  # A < 0: push down until 1 - clip
    (-1.0, 1.5, True),  # ... and a ratio that rose past 1 + clip is still pushed down
])
def test_clipping_stops_the_gradient_beyond_one_plus_minus_clip(advantage, ratio, moves):
    old = torch.tensor([[-2.0]])
    logp = (old + math.log(ratio)).requires_grad_()  # (1, 1): pi / pi_old = ratio
    ppo_loss(logp, old, torch.tensor([advantage]), torch.ones(1, 1, dtype=torch.bool), clip=0.2).backward()
    g = logp.grad.item()
    assert (g != 0) == moves
    if moves:  # gradient descent moves log pi along the advantage's sign
        assert -g * advantage > 0


def test_penalized_reward_subtracts_beta_times_the_summed_kl():
    kl = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(penalized(torch.tensor([1.0, 1.0]), kl, 0.1), torch.tensor([0.9, 0.9]))
    with pytest.raises(ValueError, match="beta"):
        penalized(torch.ones(2), kl, -0.1)


# ---------------------------------------------------------------- a real update
def test_one_ppo_update_raises_the_probability_of_the_rewarded_token(policy, tok, rows):
    chats = rows[:2]
    cfg = PPOConfig(n=8, prompts_per_step=2, max_new_tokens=3, lr=3e-3, beta_kl=0.0, epochs=2, minibatch=8)
    ro = rollout(policy, tok, chats, cfg.n, cfg.max_new_tokens, gen())
    target = ro.replies[0].ids[0]  # a token the policy did sample
    reward = torch.tensor([float(target in r.ids) for r in ro.replies])
    assert 0 < reward.sum() < len(reward)  # some replies have it, some do not: a signal

    def p_target():
        with torch.no_grad():
            return answer_logprobs(policy, tok, chats, [[target]] * 2).logp[:, 0].exp()  # (2,)

    before = p_target()
    reference = copy.deepcopy(policy)
    batch = score_rollout(policy, reference, tok, ro, reward, cfg)
    assert (batch.kl == 0).all()
    stats = ppo_update(policy, make_optimizer(policy, TrainConfig(lr=cfg.lr, weight_decay=0.0)), tok,
                       batch, cfg, gen())
    after = p_target()
    assert (after > 1.1 * before).all(), (before, after)  # PPO's clip (0.2) keeps each step modest
    assert 0 <= stats["clip_frac"] <= 1


def test_train_ppo_runs_leaves_the_reference_alone_and_reports(policy, tok, rows):
    reference = copy.deepcopy(policy)
    ref_sum, pol_sum = parameter_checksum(reference), parameter_checksum(policy)
    cfg = PPOConfig(steps=2, n=2, prompts_per_step=2, max_new_tokens=4, beta_kl=0.1)
    hist = train_ppo(policy, reference, tok, rows, gold_rewards, cfg, gold_fn=gold_rewards, progress=False)
    assert [h["step"] for h in hist] == [0, 1]
    assert set(hist[0]) >= {"step", "reward", "kl", "gold", "seconds"}
    assert hist[0]["kl"] == pytest.approx(0.0, abs=1e-6) and hist[1]["kl"] > 0  # it moved after step 0
    assert hist[0]["reward"] == hist[0]["gold"]  # the gold rater was the reward here
    assert parameter_checksum(reference) == ref_sum and parameter_checksum(policy) != pol_sum


def test_train_ppo_evaluates_before_the_updates_of_the_steps_asked_for(policy, tok, rows):
    reference = copy.deepcopy(policy)
    start = parameter_checksum(policy)
    seen = []

    def evaluate(model):
        seen.append(parameter_checksum(model))
        return {"n": len(seen)}

    cfg = PPOConfig(steps=3, n=2, prompts_per_step=2, max_new_tokens=4, beta_kl=0.1)
    hist = train_ppo(policy, reference, tok, rows, gold_rewards, cfg, progress=False, evaluate=evaluate,
                     eval_at=(0, 2))
    assert [h.get("eval") for h in hist] == [{"n": 1}, None, {"n": 2}]
    assert seen[0] == start and seen[1] != start  # step 0: the starting policy; step 2: after two updates


# ---------------------------------------------------------------- best-of-n
def test_best_of_n_picks_the_reply_with_the_highest_reward(policy, tok, rows):
    def longest(chats, replies):
        return torch.tensor([float(len(r.ids)) for r in replies])

    chosen = best_of_n(policy, tok, rows, 4, longest, max_new_tokens=5, generator=gen(3))
    ro = rollout(policy, tok, rows, 4, 5, gen(3))  # the same samples
    for i, r in enumerate(chosen):
        group = ro.replies[4 * i:4 * i + 4]
        assert r.ids == max(group, key=lambda g: len(g.ids)).ids
        assert r.prompt == getattr(rows[i], "prompt", rows[i])


def test_best_of_n_kl_bound():
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    values = [best_of_n_kl(n) for n in (1, 2, 4, 16, 64)]
    assert all(a < b for a, b in zip(values, values[1:]))


# ---------------------------------------------------------------- DPO
def test_dpo_loss_is_log2_at_the_reference_and_its_gradient_prefers_the_chosen():
    lw = torch.tensor([-5.0, -7.0], requires_grad=True)
    ll = torch.tensor([-6.0, -4.0], requires_grad=True)
    loss = dpo_loss(lw, ll, lw.detach(), ll.detach(), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert (lw.grad < 0).all() and (ll.grad > 0).all()  # descent raises chosen, lowers rejected
    torch.testing.assert_close(lw.grad, -ll.grad)


def test_a_dpo_step_raises_chosen_relative_to_rejected(policy, tok, rows):
    reference = copy.deepcopy(policy)
    pairs = [(c, c.reference, "I hate this.") for c in rows]
    x, y = dpo_tensors(tok, pairs, policy.config.block_size)  # (2, P, T)
    assert x.shape[:2] == (2, len(pairs)) and (y[0] != -100).sum(1).tolist() == [
        len(reply_token_ids(tok, c.reference)) for c in rows]

    def margin(model):
        with torch.no_grad():
            return (sequence_logprobs(model, x[0], y[0]) - sequence_logprobs(model, x[1], y[1])).mean().item()

    start = margin(policy)
    hist = train_dpo(policy, reference, tok, pairs, beta=0.1,
                     cfg=TrainConfig(steps=5, lr=3e-3, warmup_steps=1, weight_decay=0.0, eval_every=100),
                     batch_size=4, progress=False)
    assert hist.train_loss[0] == pytest.approx(math.log(2), abs=1e-5)
    assert margin(policy) > start + 1.0 and hist.train_loss[-1] < math.log(2)
    assert margin(reference) == pytest.approx(start)


# ---------------------------------------------------------------- bad input
def test_bad_inputs_have_clear_messages(policy, tok, rows):
    with pytest.raises(ValueError, match="pair up one to one"):
        answer_logprobs(policy, tok, rows, ["Hi."])
    with pytest.raises(ValueError, match="empty"):
        answer_logprobs(policy, tok, rows[:1], [[]])
    with pytest.raises(ValueError, match="n .* must be >= 1"):
        rollout(policy, tok, rows, 0)
    with pytest.raises(ValueError, match="n >= 1"):
        best_of_n_kl(0)
    with pytest.raises(ValueError, match="n >= 2"):
        group_advantages(torch.ones(4), n=1)
    with pytest.raises(ValueError, match="multiple of n"):
        group_advantages(torch.ones(5), n=2)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta=-1.0)
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="beta_kl"):
        PPOConfig(beta_kl=-0.1)
    with pytest.raises(ValueError, match="n must be >= 2"):
        PPOConfig(n=1)
    with pytest.raises(ValueError, match="same object"):
        train_ppo(policy, policy, tok, rows, gold_rewards, PPOConfig(steps=1, prompts_per_step=1), progress=False)
    with pytest.raises(ValueError, match="one number per reply"):
        best_of_n(policy, tok, rows, 2, lambda c, r: torch.zeros(3), max_new_tokens=2)
    with pytest.raises(ValueError, match="does not fit"):
        rollout(policy, tok, rows, 2, max_new_tokens=policy.config.block_size)
    with pytest.raises(ValueError, match="chosen_text"):
        dpo_tensors(tok, [(rows[0], "yes")], 128)


# ---------------------------------------------------------------- notebook 08's measurements
def test_rl_prompts_are_one_split_without_stories(chats):
    train, test = rl_prompts(chats), rl_prompts(chats, "test")
    assert train and test and not {c.kind for c in train + test} & {"story"}
    assert not {(c.prompt, c.memory) for c in train} & {(c.prompt, c.memory) for c in test}


def test_reward_model_fn_scores_each_reply_as_the_labelers_answer(policy, tok, rows):
    rm = RewardModel.from_chat_model(policy)
    torch.nn.init.normal_(rm.value_head.weight, generator=gen(0))
    ro = rollout(policy, tok, rows, 2, 4, gen(1))
    got = reward_model_fn(rm, tok)(ro.chats, ro.replies)
    want = rm.score(tok, ro.chats, [Answer(r.text, r.finished, "sft") for r in ro.replies])
    assert torch.allclose(got, want)


def test_measure_policy_of_the_reference_itself_has_zero_kl(policy, other, tok, rows):
    same = measure_policy(policy, policy, tok, rows, gold_rewards, n=2, max_new_tokens=4)
    moved = measure_policy(policy, other, tok, rows, gold_rewards, n=2, max_new_tokens=4)
    assert same["kl"] == pytest.approx(0.0, abs=1e-6) and moved["kl"] > 0.01  # the control: a change shows
    assert same["reward"] == same["gold"] and 1 <= same["length"] <= 4


def test_best_of_n_curve_picks_within_disjoint_groups(policy, tok, rows):
    def longest(chats, replies):
        return torch.tensor([float(len(r.ids)) for r in replies])

    curve = best_of_n_curve(policy, tok, rows, [1, 2, 4], longest, gold_fn=longest, max_new_tokens=6)
    assert [c["n"] for c in curve] == [1, 2, 4] and curve[0]["kl_bound"] == 0.0
    assert curve[0]["reward"] <= curve[1]["reward"] <= curve[2]["reward"]  # the max of more is no smaller
    assert curve[2]["reward"] == curve[2]["gold"]
    with pytest.raises(ValueError, match="divide"):
        best_of_n_curve(policy, tok, rows, [3, 4], longest)


@pytest.mark.parametrize("form", ["bon", "rl"])
def test_fit_gao_recovers_known_coefficients_and_its_peak(form):
    d = torch.linspace(0.2, 4.0, 12, dtype=torch.float64)
    second = d * d if form == "bon" else d * torch.log(d)
    gain = 0.3 * d - 0.1 * second
    fit = fit_gao(d, gain, form)
    assert fit["alpha"] == pytest.approx(0.3) and fit["beta"] == pytest.approx(0.1) and fit["r2"] == pytest.approx(1)
    peak = 1.5 if form == "bon" else math.exp(2.0)
    assert fit["peak_d"] == pytest.approx(peak)
    noisy = fit_gao(d, gain + 0.2 * torch.randn(12, generator=gen(0), dtype=torch.float64), form)
    assert noisy["r2"] < 0.95  # the control: noise lowers R^2
    with pytest.raises(ValueError, match="d > 0"):
        fit_gao([0.0, 1.0, 2.0], [0.0, 0.1, 0.1], form)


def test_dpo_pairs_follow_the_ranking_and_skip_unfinished(chats):
    chat = split(chats, "test")[0]
    answers = tuple(Answer(t, f, "sft") for t, f in [("a", True), ("b", True), ("c", False)])
    prompt = RankedPrompt(chat, answers, (0.1, 0.9, 0.5), (1, 2, 0), False)
    assert dpo_pairs([prompt]) == [(chat, "b", "a")]


def test_train_ppo_leaves_the_reference_trainable_so_a_second_run_from_it_trains(policy, tok, rows):
    reference = copy.deepcopy(policy)
    cfg = PPOConfig(steps=1, n=2, prompts_per_step=2, max_new_tokens=4)
    train_ppo(policy, reference, tok, rows, gold_rewards, cfg, progress=False)
    assert all(p.requires_grad for p in reference.parameters())
    second = copy.deepcopy(reference)  # what run_ppo does with the SFT model, run after run
    before = parameter_checksum(second)
    train_ppo(second, reference, tok, rows, gold_rewards, cfg, progress=False)
    assert parameter_checksum(second) != before
