"""RLHF: making the SFT model write what a reward prefers, without drifting far from it.

Step 3 of InstructGPT (Ouyang et al. 2022, arXiv 2203.02155): sample replies from the
policy, score them with a reward, and push up the log-probability of the better ones
with PPO (Schulman et al. 2017, arXiv 1707.06347), while a KL penalty keeps the policy
close to the frozen SFT model (the *reference*), so that it cannot wander off to text
where the reward is wrong (Gao et al. 2022: the proxy reward keeps rising, the gold
reward turns down). Notebook 08 runs it, and two cheaper ways to the same goal:

* **best-of-n**: sample n replies, keep the one the reward likes best; no training.
  Its KL to the reference is at most ``log n - (n - 1) / n`` (Beirami et al. 2024);
* **DPO** (Rafailov et al. 2023, arXiv 2305.18290): no sampling and no reward model,
  a classification loss on (chosen, rejected) pairs.

The pieces, in the order a PPO step uses them::

    rollout         n replies per prompt, sampled from the policy (one KV-cached batch)
    answer_logprobs one forward over prompt + reply: log pi(token) and the logits (N, L, V)
    per_token_kl    the exact KL(pi || pi_ref) at each reply position (k1, k3: its estimates)
    penalized       reward - beta * (the reply's summed KL): the KL is *in the reward*
    group_advantages reward - mean reward of the prompt's group: no value network
    ppo_loss        the clipped surrogate (+ the KL's own gradient)
    ppo_update      a few epochs of minibatch steps on one rollout
    train_ppo       the loop; returns a history (one dict per step)

The reward is any callable ``reward_fn(chats, replies) -> (N,) tensor``: the reward model
of notebook 07 (``utils.reward``), or the gold rater itself (``gold_rewards``) as a stand-in.
Every log-probability comes from ``utils.logprobs.token_logprobs`` (one definition; a
second one would show up as a fake KL).
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from utils.chat import Reply, prompt_ids, reply_text, sft_batch
from utils.chats import split, words
from utils.gold import gold_score
from utils.logprobs import IGNORE, token_logprobs
from utils.reward import RankedPrompt, fitted_answer
from utils.sampling import fits_window, sample
from utils.train import TrainConfig, make_optimizer, train


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------
def _prompt_and_memory(chat):
    """A ``Chat`` row gives its prompt and memory block; a plain prompt (str or turns) has no memory."""
    return (chat.prompt, chat.memory) if hasattr(chat, "prompt") else (chat, None)


def _check_same_length(what_a: str, a, what_b: str, b) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what_a} and {what_b} must pair up one to one, but there are {len(a)} "
                         f"{what_a} and {len(b)} {what_b}.")


def _check_not_same_model(policy, reference) -> None:
    if policy is reference:
        raise ValueError("policy and reference are the same object: training the policy would move the "
                         "reference too, and the KL would stay 0. Pass a frozen copy as the reference: "
                         "reference = copy.deepcopy(sft_model).eval().")


@contextmanager
def _eval_mode(model):
    """No dropout while log-probs are compared: the PPO ratio must be exactly 1 before an update."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def _device(model):
    return next(model.parameters()).device


# ---------------------------------------------------------------------------
# log-probs of many replies in one forward
# ---------------------------------------------------------------------------
class AnswerLogprobs(NamedTuple):
    """Reply ``i``'s token ``j`` is column ``j`` of every tensor (``L`` = the longest reply).

    ``logp`` (N, L): log pi(token), 0 on padding; ``logits`` (N, L, V): the full next-token
    scores at each reply position (what ``per_token_kl`` needs); ``mask`` (N, L): True on
    the reply's tokens.
    """
    logp: torch.Tensor
    logits: torch.Tensor
    mask: torch.Tensor


def answer_logprobs(model, tokenizer, chats: list, reply_ids_list: list) -> AnswerLogprobs:
    """Log-probs of every reply after its chat, in ONE batched forward (``utils.chat.reply_logprobs``
    row by row, up to float rounding).

    ``chats``: ``Chat`` rows (their memory block is put first) or plain prompts;
    ``reply_ids_list``: each reply's ids (``Reply.ids``) or text (``<|end|>`` appended,
    ``utils.chat.reply_token_ids``). Each prompt + reply is a row starting at position 0,
    right-padded (a causal model's earlier positions never see the pads), so prompts of
    any lengths share the batch. Gradients flow if the model requires them.
    """
    _check_same_length("chats", chats, "replies", reply_ids_list)
    if not chats:
        raise ValueError("answer_logprobs needs at least one (chat, reply) pair.")
    rows = [(*_prompt_and_memory(c), r) for c, r in zip(chats, reply_ids_list)]
    for i, (_, _, r) in enumerate(rows):
        if len(r) == 0:
            raise ValueError(f"reply {i} is empty: a reply has at least one token (its <|end|>).")
    x, y = sft_batch(tokenizer, [(p, r, m) for p, m, r in rows], model.config.block_size)  # (N, T), (N, T)
    counted = y != IGNORE  # (N, T): the reply's positions
    width = int(counted.any(0).nonzero().max()) + 1  # later columns are padding in every row
    x, y, counted = x[:, :width], y[:, :width], counted[:, :width]
    logits = model(x.to(_device(model)))  # (N, W, V)
    return _gather_replies(logits, y.to(logits.device), counted.to(logits.device))


def _gather_replies(logits: torch.Tensor, y: torch.Tensor, counted: torch.Tensor) -> AnswerLogprobs:
    """Move each row's reply positions to columns 0..L-1: (N, W, V), (N, W), (N, W) -> AnswerLogprobs."""
    lengths = counted.sum(1)  # (N,)
    start = counted.float().argmax(1)  # (N,): the first reply position of each row
    L = int(lengths.max())
    cols = torch.arange(L, device=logits.device)  # (L,)
    mask = cols[None] < lengths[:, None]  # (N, L)
    pos = (start[:, None] + cols[None]).clamp(max=logits.size(1) - 1)  # (N, L): where token j is predicted
    reply_logits = logits.gather(1, pos[..., None].expand(-1, -1, logits.size(-1)))  # (N, L, V)
    targets = y.gather(1, pos).masked_fill(~mask, IGNORE)  # (N, L)
    return AnswerLogprobs(token_logprobs(reply_logits, targets), reply_logits, mask)


# ---------------------------------------------------------------------------
# how far from the reference: the exact KL and two one-sample estimates
# ---------------------------------------------------------------------------
def per_token_kl(policy_logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The exact KL(pi || pi_ref) at each reply position: (N, L, V), (N, L, V), (N, L) -> (N, L).

    ``sum_v pi(v) [log pi(v) - log pi_ref(v)]`` over the whole vocabulary, given the same
    prefix: never negative, 0 where the models agree, 0 on padding. Summed over a reply
    it is the KL between the two models' distributions over replies, in expectation over
    the sampled prefixes (the chain rule of KL) -- the x-axis of Gao et al. 2022's plots.
    It has no sampling noise at a position, unlike ``kl_k1`` / ``kl_k3``, which see only
    the sampled token. Gradients flow into ``policy_logits``.
    """
    if policy_logits.shape != ref_logits.shape or policy_logits.shape[:-1] != mask.shape:
        raise ValueError(f"policy_logits and ref_logits must both be (N, L, V) and mask (N, L); got "
                         f"{tuple(policy_logits.shape)}, {tuple(ref_logits.shape)}, {tuple(mask.shape)}.")
    logp = torch.log_softmax(policy_logits.float(), dim=-1)  # (N, L, V)
    logq = torch.log_softmax(ref_logits.float(), dim=-1)  # (N, L, V)
    kl = (logp.exp() * (logp - logq)).sum(-1)  # (N, L)
    return kl.clamp(min=0.0) * mask  # clamp: float rounding only, the exact value is >= 0


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = log pi(y) - log pi_ref(y) of the *sampled* token: (N, L), (N, L) -> (N, L).

    Unbiased for the KL (its mean over samples from pi), but one sample can be negative
    (a token the reference likes more). InstructGPT's per-token penalty. Schulman,
    "Approximating KL divergence" (2020), http://joschu.net/blog/kl-approx.html.
    Padding (log-probs 0 in both) gives 0.
    """
    return logp - ref_logp


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = (r - 1) - log r with r = pi_ref(y) / pi(y) of the sampled token: (N, L), (N, L) -> (N, L).

    Unbiased too, and never negative (log r <= r - 1), with lower variance than k1 when
    the models are close; GRPO's KL term (Shao et al. 2024). Schulman, "Approximating KL
    divergence" (2020), http://joschu.net/blog/kl-approx.html. Padding gives 0.
    """
    log_r = ref_logp - logp  # (N, L)
    return torch.expm1(log_r) - log_r  # (r - 1) - log r, accurate when r is near 1


# ---------------------------------------------------------------------------
# sampling a group of replies per prompt
# ---------------------------------------------------------------------------
@dataclass
class Rollout:
    """``n`` replies per chat, prompt-major: ``replies[i]`` answers ``chats[i]``
    (``chats`` repeats each chat ``n`` times)."""
    chats: list
    replies: list[Reply]
    n: int


@torch.no_grad()
def rollout(policy, tokenizer, chats: list, n: int, max_new_tokens: int = 32,
            generator: torch.Generator | None = None) -> Rollout:
    """Sample ``n`` replies to each chat at temperature 1 (the policy itself), all in one batch.

    Each chat keeps its own memory block (``utils.chat.sample_replies`` takes one memory for
    all prompts). Log-probs in each ``Reply`` are under the policy, as in ``sample_replies``.
    Prompt + reply must fit the context window, so that ``answer_logprobs`` can score them.
    """
    if n < 1 or max_new_tokens < 1:
        raise ValueError(f"n (replies per prompt) and max_new_tokens must be >= 1, got n={n}, "
                         f"max_new_tokens={max_new_tokens}.")
    if not chats:
        raise ValueError("rollout needs at least one chat to answer.")
    ids = [prompt_ids(tokenizer, *_prompt_and_memory(c)) for c in chats]
    block = policy.config.block_size
    for c, p in zip(chats, ids):
        if not fits_window(len(p), max_new_tokens, block):
            raise ValueError(f"a prompt of {len(p)} tokens plus {max_new_tokens} new tokens does not fit the "
                             f"{block}-token window ({_prompt_and_memory(c)[0]!r:.60}). Lower max_new_tokens "
                             f"or leave this chat out.")
    out = sample(policy, ids, max_new_tokens, stop_id=tokenizer.end_id, generator=generator, n=n)
    replies = []
    for row in range(len(chats) * n):
        new, logps = out.written(row)
        text, finished = reply_text(tokenizer, new)
        replies.append(Reply(_prompt_and_memory(chats[row // n])[0], text, new, finished,
                             float(logps.sum()), logps))
    return Rollout([c for c in chats for _ in range(n)], replies, n)


def rewards_of(reward_fn, chats: list, replies: list[Reply]) -> torch.Tensor:
    """``reward_fn(chats, replies)`` as a float tensor (N,), checked."""
    r = torch.as_tensor(reward_fn(chats, replies), dtype=torch.float32).detach().cpu()
    if r.shape != (len(replies),):
        raise ValueError(f"reward_fn(chats, replies) must return one number per reply, shape "
                         f"({len(replies)},); got shape {tuple(r.shape)}.")
    return r


def gold_rewards(chats: list, replies: list[Reply]) -> torch.Tensor:
    """The gold rater's total (``utils.gold``) of each reply, (N,): a ``reward_fn`` / ``gold_fn``."""
    _check_same_length("chats", chats, "replies", replies)
    return torch.tensor([gold_score(c, r.text, r.finished).total for c, r in zip(chats, replies)])


def reward_model_fn(model, tokenizer):
    """A ``reward_fn`` from a reward model of notebook 07 (``utils.reward.RewardModel``).

    Each sampled reply is read as the labelers' answers were (``fitted_answer``: an
    unfinished reply looks unfinished, and is cut to the window if re-encoding grew it).
    """
    block = model.config.block_size

    def reward_fn(chats: list, replies: list[Reply]) -> torch.Tensor:
        _check_same_length("chats", chats, "replies", replies)
        return model.score(tokenizer, chats, [fitted_answer(tokenizer, c, r.text, r.finished, block)
                                              for c, r in zip(chats, replies)])
    return reward_fn


def rl_prompts(chats: list, which: str = "train") -> list:
    """The prompts RL practises on (``which="train"``) or is measured on (``"test"``): one split of
    the chat rows, without stories (a story needs 96 new tokens; every other answer fits in 32)."""
    return [c for c in split(chats, which) if c.kind != "story"]


@torch.no_grad()
def measure_policy(policy, reference, tokenizer, chats: list, reward_fn, n: int = 4, max_new_tokens: int = 32,
                   seed: int = 0) -> dict:
    """Where a policy stands on the reward-vs-KL map: ``n`` samples per chat at temperature 1,
    their mean proxy reward, mean gold, mean reply length (tokens) and mean summed exact KL to
    ``reference`` (nats per reply; ``per_token_kl`` along each sample: the sequence KL's estimate
    with no sampling noise inside a position, and never negative)."""
    ro = rollout(policy, tokenizer, chats, n, max_new_tokens, torch.Generator().manual_seed(seed))
    ids = [r.ids for r in ro.replies]
    kl = torch.cat([sequence_kl(policy, reference, tokenizer, ro.chats[lo:lo + 256], ids[lo:lo + 256])
                    for lo in range(0, len(ids), 256)])  # (N,): in chunks, the logits of all at once are GBs
    return {"reward": float(rewards_of(reward_fn, ro.chats, ro.replies).mean()),
            "gold": float(gold_rewards(ro.chats, ro.replies).mean()), "kl": float(kl.mean()),
            "length": float(sum(len(i) for i in ids) / len(ids)),
            "words": sum(len(words(r.text)) for r in ro.replies) / len(ro.replies)}


@torch.no_grad()
def sequence_kl(policy, reference, tokenizer, chats: list, reply_ids_list: list) -> torch.Tensor:
    """Each reply's summed exact KL(pi || pi_ref) along its tokens (``per_token_kl``), (N,)."""
    with _eval_mode(policy), _eval_mode(reference):
        pol = answer_logprobs(policy, tokenizer, chats, reply_ids_list)  # (N, L), (N, L, V), (N, L)
        ref = answer_logprobs(reference, tokenizer, chats, reply_ids_list)
    return per_token_kl(pol.logits, ref.logits, pol.mask).sum(1)  # (N,)


# ---------------------------------------------------------------------------
# the reward with its KL penalty, and the group baseline
# ---------------------------------------------------------------------------
def penalized(reward: torch.Tensor, kl_tokens: torch.Tensor, beta: float) -> torch.Tensor:
    """InstructGPT's RL reward: ``r(x, y) - beta * KL``, (N,), (N, L) -> (N,).

    The KL is the reply's summed per-position KL (``per_token_kl``): ``beta`` is the price,
    in reward units, of one nat of drift from the reference.
    """
    if beta < 0:
        raise ValueError(f"beta (the KL price) must be >= 0, got {beta}: a negative price would reward "
                         f"drifting away from the reference.")
    return reward - beta * kl_tokens.sum(1)  # (N,)


def group_advantages(rewards: torch.Tensor, n: int, scale_by_std: bool = False,
                     eps: float = 1e-6) -> torch.Tensor:
    """Advantage = reward - the mean reward of the same prompt's ``n`` replies: (N,) -> (N,).

    The group mean is the *baseline* that a value network would otherwise learn (PPO in
    InstructGPT has one): replies to the same prompt compete only with each other, so a
    hard prompt (every reply scores low) teaches nothing false. As in RLOO (Ahmadian et
    al. 2024; leave-one-out, which is this times n / (n - 1)) and GRPO (Shao et al. 2024).
    Advantages sum to 0 per prompt; a group of equal rewards gives 0 (no gradient).

    ``scale_by_std=False`` (the default) keeps reward units: the update is then the
    unbiased gradient of the penalized reward. GRPO divides by the group's std; with the
    KL inside the reward that blows up tiny KL differences in groups whose rewards tie.
    """
    if n < 2:
        raise ValueError(f"a group baseline needs n >= 2 replies per prompt (with 1 the advantage is "
                         f"always 0), got n={n}.")
    if rewards.dim() != 1 or rewards.numel() % n:
        raise ValueError(f"rewards must be (N,) with N a multiple of n={n} (prompt-major groups); "
                         f"got shape {tuple(rewards.shape)}.")
    groups = rewards.view(-1, n)  # (P, n)
    adv = groups - groups.mean(1, keepdim=True)  # (P, n)
    if scale_by_std:
        adv = adv / (groups.std(1, keepdim=True) + eps)  # (P, n)
    return adv.flatten()  # (N,)


# ---------------------------------------------------------------------------
# the PPO objective and update
# ---------------------------------------------------------------------------
def ppo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
             clip: float = 0.2, kl: torch.Tensor | None = None, beta: float = 0.0) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), as a loss to minimise.

    ``logp``, ``old_logp``, ``mask`` (N, L); ``advantages`` (N,), one per reply, shared by its
    tokens. Per token, ``ratio = pi / pi_old`` and the objective is
    ``min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A)``: once a token's ratio has
    moved ``clip`` past 1 in the direction A asks for, its gradient stops (a trust
    region without second derivatives). Summed over a reply's tokens, averaged over
    replies, so at ratio 1 the gradient is the plain policy gradient
    ``-mean_i A_i * grad log pi(y_i | x_i)`` (REINFORCE with a baseline).

    ``kl`` (N, L), the differentiable ``per_token_kl``, adds ``beta * KL`` per reply: the
    direct gradient of the exact KL penalty (see ``ppo_update``).
    """
    if not 0 < clip < 1:
        raise ValueError(f"clip must be in (0, 1) (PPO uses 0.2), got {clip}.")
    if logp.shape != old_logp.shape or logp.shape != mask.shape or advantages.shape != logp.shape[:1]:
        raise ValueError(f"logp, old_logp and mask must be (N, L) and advantages (N,); got "
                         f"{tuple(logp.shape)}, {tuple(old_logp.shape)}, {tuple(mask.shape)}, "
                         f"{tuple(advantages.shape)}.")
    ratio = torch.exp(logp - old_logp.detach())  # (N, L): 1 before the first update
    A = advantages.detach()[:, None]  # (N, 1)
    surrogate = torch.minimum(ratio * A, ratio.clamp(1 - clip, 1 + clip) * A)  # (N, L)
    loss = -(surrogate * mask).sum() / logp.size(0)
    if kl is not None:
        loss = loss + beta * (kl * mask).sum() / logp.size(0)
    return loss


@dataclass
class PPOConfig:
    """One PPO run. Each step: ``prompts_per_step`` prompts x ``n`` replies, then ``epochs``
    passes over them in minibatches of ``minibatch`` replies."""
    steps: int = 80  # ~1.3 s a step for the course model on one core (16 x 4 replies x 32 tokens)
    prompts_per_step: int = 16  # different prompts per step: the gradient averages over them
    n: int = 4  # replies per prompt: the group whose mean reward is the baseline (>= 2)
    max_new_tokens: int = 32  # covers every reference answer but the stories
    lr: float = 3e-5  # constant. Measured on the SFT model (gold reward, 80 steps): 3e-4 lowered the
    #                   reward it was trained on (KL 3 nats); 1e-4 drifted; 3e-5 held test gold
    beta_kl: float = 0.2  # reward units per nat of KL to the reference (Gao et al. 2022 sweep it). Measured
    #                       against notebook 07's fair reward model, 80 steps: 0.2 holds test gold (0.811 ->
    #                       0.815) at ~0.2 nats; 0.05 drifts to ~3 nats and loses 0.08 gold; 0 collapses
    clip: float = 0.2  # PPO's trust region: ratios beyond 1 +- clip stop pushing (Schulman 2017)
    epochs: int = 2  # passes over each rollout: more reuse of samples, more off-policy
    minibatch: int = 16  # replies per gradient step: 4 updates per epoch at 16 x 4
    scale_by_std: bool = False  # GRPO divides advantages by the group std; see group_advantages
    grad_clip: float = 1.0  # gradient-norm clip, as in every course training loop
    seed: int = 0  # seeds the prompt order, the samples and the minibatch order

    def __post_init__(self):
        if self.n < 2:
            raise ValueError(f"PPOConfig.n must be >= 2 replies per prompt (the group baseline), got {self.n}.")
        if self.beta_kl < 0:
            raise ValueError(f"PPOConfig.beta_kl must be >= 0, got {self.beta_kl}.")
        for name in ("steps", "prompts_per_step", "max_new_tokens", "epochs", "minibatch"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}.")


@dataclass
class PPOBatch:
    """A scored rollout: everything the epochs of updates need, fixed before the first one.

    ``reward`` (N,): the proxy reward; ``kl`` (N,): each reply's summed exact KL under the
    policy that sampled it; ``advantages`` (N,); ``old_logp``, ``mask`` (N, L);
    ``ref_logprobs`` (N, L, V): the reference's log-softmax at each reply position.
    """
    chats: list
    replies: list[Reply]
    reward: torch.Tensor
    kl: torch.Tensor
    advantages: torch.Tensor
    old_logp: torch.Tensor
    mask: torch.Tensor
    ref_logprobs: torch.Tensor


@torch.no_grad()
def score_rollout(policy, reference, tokenizer, ro: Rollout, reward: torch.Tensor, cfg: PPOConfig) -> PPOBatch:
    """Log-probs under the policy and the reference, the exact KL, the penalized reward and the advantages."""
    ids = [r.ids for r in ro.replies]
    with _eval_mode(policy), _eval_mode(reference):
        pol = answer_logprobs(policy, tokenizer, ro.chats, ids)  # (N, L), (N, L, V), (N, L)
        ref = answer_logprobs(reference, tokenizer, ro.chats, ids)
    kl = per_token_kl(pol.logits, ref.logits, pol.mask)  # (N, L)
    adv = group_advantages(penalized(reward.to(kl.device), kl, cfg.beta_kl), ro.n, cfg.scale_by_std)  # (N,)
    return PPOBatch(ro.chats, ro.replies, reward, kl.sum(1), adv, pol.logp, pol.mask,
                    torch.log_softmax(ref.logits.float(), -1))


def ppo_update(policy, optimizer, tokenizer, batch: PPOBatch, cfg: PPOConfig,
               generator: torch.Generator | None = None) -> dict:
    """``cfg.epochs`` passes of minibatch PPO steps over one scored rollout; returns mean stats.

    The KL penalty is **in the reward** (InstructGPT), not a separate loss term (GRPO): a
    reply's advantage already counts the KL it ran up. Because our KL is the exact one at
    each position (``per_token_kl``), a function of the weights and not of the sampled
    token alone, the group baseline would cancel its first position (equal for every reply
    of a prompt); so its direct gradient ``beta * grad KL`` is added to the loss too. The two
    together are the exact gradient of ``E[r] - beta * KL(pi || pi_ref)``. (With k1 in the
    reward, InstructGPT's choice, the direct part averages to 0 and is left out.)
    """
    N, stats = len(batch.replies), {"loss": [], "clip_frac": []}
    with _eval_mode(policy):
        for _ in range(cfg.epochs):
            for rows in torch.randperm(N, generator=generator).split(cfg.minibatch):
                loss, clip_frac = _minibatch_loss(policy, tokenizer, batch, rows.tolist(), cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
                optimizer.step()
                stats["loss"].append(loss.item())
                stats["clip_frac"].append(clip_frac)
    return {k: sum(v) / len(v) for k, v in stats.items()}


def _minibatch_loss(policy, tokenizer, batch: PPOBatch, rows: list[int], cfg: PPOConfig):
    """``ppo_loss`` on some rows of the batch, and the share of their tokens whose ratio is clipped."""
    new = answer_logprobs(policy, tokenizer, [batch.chats[i] for i in rows],
                          [batch.replies[i].ids for i in rows])  # (b, l), (b, l, V), (b, l)
    L = new.logp.size(1)  # the longest reply of these rows
    old, ref = batch.old_logp[rows, :L], batch.ref_logprobs[rows, :L]  # (b, l), (b, l, V)
    kl = per_token_kl(new.logits, ref, new.mask)  # (b, l): differentiable
    loss = ppo_loss(new.logp, old, batch.advantages[rows], new.mask, cfg.clip, kl, cfg.beta_kl)
    ratio = torch.exp(new.logp.detach() - old)  # (b, l)
    clipped = ((ratio - 1).abs() > cfg.clip) & new.mask
    return loss, float(clipped.sum() / new.mask.sum())


def train_ppo(policy, reference, tokenizer, chats: list, reward_fn, cfg: PPOConfig | None = None,
              gold_fn=None, progress: bool = True, evaluate=None, eval_at=()) -> list[dict]:
    """InstructGPT's step 3: ``cfg.steps`` PPO steps on ``policy``, in place, against ``reward_fn``.

    Each step draws ``cfg.prompts_per_step`` chats, samples ``cfg.n`` replies to each
    (``rollout``), scores them (``reward_fn(chats, replies) -> (N,)``, then the KL to the
    frozen ``reference``, usually the SFT model) and runs ``ppo_update``. ``gold_fn`` (same
    signature, e.g. ``gold_rewards``) is measured on the same samples but never trained on.

    Returns one dict per step: ``step``, ``reward`` (mean proxy reward of the samples),
    ``kl`` (mean summed KL per reply, nats), ``gold`` (or None), ``length`` (mean reply
    tokens), ``clip_frac``, ``seconds`` (since the start). With ``evaluate(policy) -> dict``, step
    ``s`` in ``eval_at`` also holds ``eval``: measured *before* that step's update (step 0: the
    starting policy), e.g. ``measure_policy`` on held-out prompts.
    """
    cfg = cfg or PPOConfig()
    _check_not_same_model(policy, reference)
    if cfg.prompts_per_step > len(chats):
        raise ValueError(f"prompts_per_step={cfg.prompts_per_step} but only {len(chats)} chats were given.")
    policy.requires_grad_(True)  # trained in place; the reference is only read, under no_grad
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = make_optimizer(policy, TrainConfig(lr=cfg.lr, weight_decay=0.0))  # decay would pull to 0, not to SFT
    history, start = [], time.perf_counter()
    bar = tqdm(range(cfg.steps), desc="PPO", disable=not progress, mininterval=1.0)
    for step in bar:
        measured = {"eval": evaluate(policy)} if evaluate is not None and step in eval_at else {}
        history.append(ppo_step(policy, reference, tokenizer, chats, reward_fn, cfg, opt, gen, gold_fn))
        history[-1].update(step=step, seconds=time.perf_counter() - start, **measured)
        h = history[-1]
        bar.set_postfix(reward=f"{h['reward']:.3f}", kl=f"{h['kl']:.2f}",
                        **({"gold": f"{h['gold']:.3f}"} if h["gold"] is not None else {}), refresh=False)
    policy.eval()
    return history


def run_ppo(chat_model, tokenizer, chats: list, reward_model, cfg: PPOConfig | None = None,
            progress: bool = True, evaluate=None, eval_at=()):
    """Notebook 08's recipe: a copy of ``chat_model`` (the SFT model) trained by ``train_ppo``
    against ``reward_model`` on ``rl_prompts(chats)``, with the frozen original as the reference
    and the gold rater watching. Returns (policy, history)."""
    policy = copy.deepcopy(chat_model)
    history = train_ppo(policy, chat_model, tokenizer, rl_prompts(chats), reward_model_fn(reward_model, tokenizer),
                        cfg, gold_fn=gold_rewards, progress=progress, evaluate=evaluate, eval_at=eval_at)
    return policy, history


def ppo_step(policy, reference, tokenizer, chats, reward_fn, cfg: PPOConfig, optimizer, generator,
             gold_fn=None) -> dict:
    """One PPO step: draw prompts, sample, score, update. Returns the step's stats."""
    picked = torch.randperm(len(chats), generator=generator)[:cfg.prompts_per_step].tolist()
    ro = rollout(policy, tokenizer, [chats[i] for i in picked], cfg.n, cfg.max_new_tokens, generator)
    reward = rewards_of(reward_fn, ro.chats, ro.replies)  # (N,)
    batch = score_rollout(policy, reference, tokenizer, ro, reward, cfg)
    gold = None if gold_fn is None else float(rewards_of(gold_fn, ro.chats, ro.replies).mean())
    stats = ppo_update(policy, optimizer, tokenizer, batch, cfg, generator)
    return {"reward": float(reward.mean()), "kl": float(batch.kl.mean()), "gold": gold,
            "length": float(batch.mask.sum(1).float().mean()), "clip_frac": stats["clip_frac"]}


# ---------------------------------------------------------------------------
# best-of-n: no training at all
# ---------------------------------------------------------------------------
def best_of_n(policy, tokenizer, chats: list, n: int, reward_fn, max_new_tokens: int = 32,
              generator: torch.Generator | None = None) -> list[Reply]:
    """For each chat, sample ``n`` replies and keep the one ``reward_fn`` scores highest (first on ties).

    The simplest use of a reward: the policy's weights never change, yet the chosen
    replies come from a new distribution, whose KL to the policy is at most
    ``best_of_n_kl(n)`` (Beirami et al. 2024, arXiv 2401.01879). Gao et al. 2022 compare
    it with RL at equal KL.
    """
    ro = rollout(policy, tokenizer, chats, n, max_new_tokens, generator)
    reward = rewards_of(reward_fn, ro.chats, ro.replies).view(len(chats), n)  # (P, n)
    best = reward.argmax(1)  # (P,)
    return [ro.replies[i * n + int(j)] for i, j in enumerate(best)]


def best_of_n_kl(n: int) -> float:
    """``log n - (n - 1) / n``: the KL (nats) of best-of-n to the policy it samples from, at most.

    The widely quoted formula is an upper bound, reached when no two replies tie (Beirami
    et al. 2024, arXiv 2401.01879); 0 at n = 1, growing like log n.
    """
    if n < 1:
        raise ValueError(f"best-of-n needs n >= 1 samples, got {n}.")
    return math.log(n) - (n - 1) / n


@torch.no_grad()
def best_of_n_curve(policy, tokenizer, chats: list, ns: list[int], reward_fn, gold_fn=gold_rewards,
                    max_new_tokens: int = 32, seed: int = 0, batch: int = 32) -> list[dict]:
    """Best-of-n for every n in ``ns`` from one set of samples: ``max(ns)`` replies per chat, cut
    into ``max(ns) // n`` disjoint groups of n; per n, the mean proxy reward and gold of each group's
    pick, and ``best_of_n_kl(n)``. Every n sees the same samples, so the curve is smooth."""
    top = max(ns)
    if any(n < 1 or top % n for n in ns):
        raise ValueError(f"every n must divide the largest one ({top}), got {list(ns)}.")
    gen, proxy, gold = torch.Generator().manual_seed(seed), [], []
    for lo in range(0, len(chats), batch):
        ro = rollout(policy, tokenizer, chats[lo:lo + batch], top, max_new_tokens, gen)
        proxy.append(rewards_of(reward_fn, ro.chats, ro.replies).view(-1, top))  # (P, top)
        gold.append(rewards_of(gold_fn, ro.chats, ro.replies).view(-1, top))
    proxy, gold = torch.cat(proxy), torch.cat(gold)  # (P, top)
    out = []
    for n in ns:
        r, g = proxy.view(len(chats), top // n, n), gold.view(len(chats), top // n, n)  # (P, groups, n)
        pick = r.argmax(-1, keepdim=True)  # (P, groups, 1)
        out.append({"n": n, "kl_bound": best_of_n_kl(n), "reward": float(r.gather(-1, pick).mean()),
                    "gold": float(g.gather(-1, pick).mean())})
    return out


def fit_gao(d, gain, form: str) -> dict:
    """Least-squares fit of Gao et al. 2022's gold-reward curves (arXiv 2210.10760, eq. 1-2), with
    ``d = sqrt(KL)`` to the initial policy and ``gain`` = gold minus the initial policy's gold:

    * ``form="bon"``: best-of-n, ``gain = d (alpha - beta d)``;
    * ``form="rl"``:  RL, ``gain = d (alpha - beta log d)``.

    Both are linear in (alpha, beta). Returns alpha, beta, R^2 and the d of the fitted peak."""
    d, gain = torch.as_tensor(d, dtype=torch.float64), torch.as_tensor(gain, dtype=torch.float64)
    if form not in ("bon", "rl"):
        raise ValueError(f"form must be 'bon' or 'rl', got {form!r}.")
    if d.shape != gain.shape or d.dim() != 1 or len(d) < 3 or bool((d <= 0).any()):
        raise ValueError(f"need >= 3 points with d > 0 and one gain per d; got d {tuple(d.shape)}, "
                         f"gain {tuple(gain.shape)}.")
    second = d * d if form == "bon" else d * torch.log(d)  # (M,)
    X = torch.stack([d, -second], 1)  # (M, 2)
    coef = torch.linalg.lstsq(X, gain[:, None]).solution[:, 0]  # (2,)
    alpha, beta = float(coef[0]), float(coef[1])
    resid = gain - X @ coef
    r2 = 1.0 - float((resid ** 2).sum() / ((gain - gain.mean()) ** 2).sum())
    if beta <= 0:
        peak = float("inf")
    else:
        peak = alpha / (2 * beta) if form == "bon" else math.exp(alpha / beta - 1)
    return {"alpha": alpha, "beta": beta, "r2": r2, "peak_d": peak}


# ---------------------------------------------------------------------------
# DPO: the preference loss, no sampling
# ---------------------------------------------------------------------------
def dpo_loss(policy_logp_w: torch.Tensor, policy_logp_l: torch.Tensor, ref_logp_w: torch.Tensor,
             ref_logp_l: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """DPO's loss (Rafailov et al. 2023, arXiv 2305.18290, eq. 7), mean over pairs (N,) x 4 -> scalar.

    ``-log sigmoid(beta * [(log pi - log pi_ref)(y_w) - (log pi - log pi_ref)(y_l)])`` on
    summed reply log-probs: the reward model's Bradley-Terry loss with the implicit reward
    ``beta * log pi / pi_ref``. ``log 2`` when policy = reference; ``beta`` plays the part of
    PPO's KL price (larger: stay closer).
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0 (DPO's papers use 0.1 to 0.5), got {beta}.")
    shapes = {tuple(t.shape) for t in (policy_logp_w, policy_logp_l, ref_logp_w, ref_logp_l)}
    if len(shapes) != 1:
        raise ValueError(f"the four log-prob tensors must have one shape (N,), got {sorted(shapes)}.")
    margin = (policy_logp_w - ref_logp_w) - (policy_logp_l - ref_logp_l)  # (N,)
    return -F.logsigmoid(beta * margin).mean()


#: DPO as notebook 08 runs it: the course's training loop, 16 pairs a step; betas for the sweep.
#: Measured at beta 0.1 on the 5124 pairs, 150 steps (~145 s on one core): lr 1e-5 moved the loss
#: 0.693 -> 0.682 (test gold 0.811 -> 0.823); 3e-5 moved it to 0.661 (0.831), at 0.3 nats of KL.
DPO_TRAIN = TrainConfig(steps=150, lr=3e-5, warmup_steps=10, weight_decay=0.0, eval_every=10**9)
DPO_BETAS = (0.1, 0.3, 1.0)

#: Notebook 08's sweep: PPO with the KL penalty small or off, PPO against the length-biased reward
#: model, and DPO at several betas, each placed on the reward-vs-KL map with ``measure_policy``.
PPO_SWEEP = {"fair_beta_0": ("fair", 0.0), "fair_beta_0.05": ("fair", 0.05),
             "biased_beta_0.05": ("biased", 0.05)}
#: The steps at which each sweep run is measured on the held-out prompts (``measure_policy``), before
#: that step's update; the end of the run is measured too. Gao et al.'s curves are drawn through these.
SWEEP_EVAL_AT = (0, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def dpo_pairs(prompts: list[RankedPrompt]) -> list[tuple]:
    """The labelers' rankings (notebook 07) as DPO's (chat, chosen_text, rejected_text): every
    pair i ranked above j, as the reward model's loss uses them. Pairs with an unfinished
    answer are left out (DPO's replies end their turn)."""
    out = []
    for p in prompts:
        for a, i in enumerate(p.order):
            for j in p.order[a + 1:]:
                if p.answers[i].finished and p.answers[j].finished:
                    out.append((p.chat, p.answers[i].text, p.answers[j].text))
    return out


def dpo_tensors(tokenizer, pairs: list, block_size: int):
    """``pairs`` of (chat, chosen_text, rejected_text) -> inputs, targets (2, P, T): [0] chosen, [1] rejected.

    Each reply is encoded by ``utils.chat.reply_token_ids`` (text + ``<|end|>``) inside
    ``sft_batch``; targets are IGNORE outside the reply, as in SFT.
    """
    if not pairs:
        raise ValueError("DPO needs at least one (chat, chosen_text, rejected_text) pair.")
    for i, pair in enumerate(pairs):
        if len(pair) != 3 or not all(isinstance(t, str) for t in pair[1:]):
            raise ValueError(f"pair {i} must be (chat, chosen_text, rejected_text), got {pair!r:.80}.")
    prompts = [_prompt_and_memory(chat) for chat, _, _ in pairs]  # (prompt, memory)
    rows = [sft_batch(tokenizer, [(p, pair[k], m) for (p, m), pair in zip(prompts, pairs)], block_size)
            for k in (1, 2)]  # chosen, rejected: each (P, T), (P, T)
    return torch.stack([x for x, _ in rows]), torch.stack([y for _, y in rows])  # (2, P, T), (2, P, T)


def sequence_logprobs(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of each row's counted targets: (N, T), (N, T) -> (N,)."""
    return token_logprobs(model(x), y).sum(1)  # (N, T, V) -> (N, T) -> (N,)


def train_dpo(policy, reference, tokenizer, pairs: list, beta: float = 0.1, cfg: TrainConfig | None = None,
              batch_size: int = 16, seed: int = 0, evaluate=None, progress: bool = True):
    """Fine-tune ``policy`` in place with DPO on ``pairs`` of (chat, chosen_text, rejected_text).

    The course's one training loop (``utils.train.train``: AdamW, warm-up + cosine,
    clipping) with ``dpo_loss`` as the loss, ``batch_size`` pairs a step. The reference's
    log-probs are computed once (it is frozen). Returns the loop's ``History``
    (``train_loss`` per step starts at log 2; ``evaluate(model)`` as in ``train``).
    """
    _check_not_same_model(policy, reference)
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}.")
    cfg = cfg or DPO_TRAIN
    x, y = dpo_tensors(tokenizer, pairs, policy.config.block_size)  # (2, P, T), (2, P, T)
    with torch.no_grad(), _eval_mode(reference):  # in chunks: the logits of every pair at once are GBs
        ref = torch.stack([torch.cat([sequence_logprobs(reference, x[k, lo:lo + 256], y[k, lo:lo + 256])
                                      for lo in range(0, x.size(1), 256)]) for k in (0, 1)])  # (2, P)
    gen = torch.Generator().manual_seed(seed)

    def batches(step: int):
        rows = torch.randint(x.size(1), (batch_size,), generator=gen)  # (B,)
        xb, yb = x[:, rows].flatten(0, 1), y[:, rows].flatten(0, 1)  # (2B, T): chosen rows, then rejected
        width = int((yb != IGNORE).any(0).nonzero().max()) + 1  # later columns: padding only
        return (xb[:, :width], ref[:, rows].flatten()), yb[:, :width]

    def loss_fn(model, inputs, targets):
        xb, ref_b = inputs  # (2B, T), (2B,)
        logp = sequence_logprobs(model, xb, targets)  # (2B,)
        B = logp.size(0) // 2
        return dpo_loss(logp[:B], logp[B:], ref_b[:B], ref_b[B:], beta)

    return train(policy, batches, cfg, loss_fn=loss_fn, evaluate=evaluate, progress=progress, desc="DPO")
