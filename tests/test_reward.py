"""utils.reward: simulated labelers (Plackett-Luce => Bradley-Terry pairs), the exact noise
ceiling, InstructGPT's pairwise loss, and the reward model's head on the chat model's body."""
import math
import random

import pytest
import torch
from conftest import make_gpt

from utils.chats import split
from utils.model import GPTConfig
from utils.reward import (
    RATER_NOISE,
    Answer,
    RankedPrompt,
    RewardModel,
    answer_batch,
    answer_ids,
    expected_accuracy,
    noise_ceiling,
    pair_labels,
    pair_loss,
    rank,
    ranked_prompts,
    reward_batches,
    reward_loss_fn,
    utility,
)
from utils.train import TrainConfig, train


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


@pytest.fixture(scope="module")
def cfg(tok):
    return GPTConfig(vocab_size=tok.vocab_size, n_layer=1, d_model=32, n_head=2)


def test_each_pair_of_a_ranking_is_a_bradley_terry_comparison():
    utilities = [0.0, 0.05, 0.15]
    rng = random.Random(0)
    rankings = [rank(utilities, rng) for _ in range(20000)]
    for i, j in [(1, 0), (2, 0), (2, 1)]:
        above = sum(r.index(i) < r.index(j) for r in rankings) / len(rankings)
        assert above == pytest.approx(sigmoid((utilities[i] - utilities[j]) / RATER_NOISE), abs=0.015)


def test_a_ranking_is_a_permutation_and_noise_must_be_positive():
    assert sorted(rank([0.3, 0.1, 0.9, 0.2], random.Random(1))) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="noise"):
        rank([0.1, 0.2], random.Random(0), noise=0)


def test_length_bias_adds_per_word_only_for_biased_labelers():
    long, short = Answer("one two three four", True, "sft"), Answer("one", True, "sft")
    assert utility(long, 0.5, biased=False) == utility(short, 0.5, biased=False)
    assert utility(long, 0.5, biased=True) > utility(short, 0.5, biased=True)


def test_pair_labels_mark_every_winner_loser_pair_once():
    wins = pair_labels((2, 0, 1))  # answer 2 best, then 0, then 1
    assert wins.tolist() == [[0, 1, 0], [0, 0, 0], [1, 1, 0]]
    k = 5
    wins = pair_labels(tuple(random.Random(0).sample(range(k), k)))
    assert wins.sum() == k * (k - 1) / 2
    assert torch.all(wins + wins.T == 1 - torch.eye(k))  # each pair decided exactly one way


def test_pair_loss_is_log_two_at_equal_rewards_and_falls_when_winners_score_higher():
    wins = torch.stack([pair_labels((0, 1, 2)), pair_labels((2, 1, 0))])  # (2, 3, 3)
    assert pair_loss(torch.zeros(2, 3), wins).item() == pytest.approx(math.log(2))
    agree = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    assert pair_loss(agree, wins) < math.log(2) < pair_loss(-agree, wins)
    rewards = torch.zeros(2, 3, requires_grad=True)
    pair_loss(rewards, wins).backward()
    assert rewards.grad[0, 0] < 0 < rewards.grad[0, 2]  # descent raises the winner, lowers the loser


def test_pair_loss_averages_per_prompt_not_per_pair():
    # one prompt with K=2 and one with K=3, padded to 3: each prompt weighs the same
    wins = torch.stack([pair_labels((0, 1, 2)), torch.tensor([[0, 1, 0], [0, 0, 0], [0, 0, 0.]])])
    rewards = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    expected = (math.log(2) + -math.log(sigmoid(3.0))) / 2
    assert pair_loss(rewards, wins).item() == pytest.approx(expected, rel=1e-5)


def test_pair_loss_says_which_shape_is_wrong():
    with pytest.raises(ValueError, match=r"rewards must be \(P, K\)"):
        pair_loss(torch.zeros(2, 3), torch.zeros(2, 3))


def ranked(gold, order=None):
    answers = tuple(Answer(f"answer {i}", True, "sft") for i in range(len(gold)))
    return RankedPrompt(chat=None, answers=answers, gold=tuple(gold), order=order or tuple(range(len(gold))))


def test_noise_ceiling_is_exact_on_a_small_case():
    prompts = [ranked([0.0, 0.1]), ranked([0.5, 0.5])]
    assert noise_ceiling(prompts) == pytest.approx((sigmoid(0.1 / RATER_NOISE) + 0.5) / 2)


def test_a_gold_ordered_scorer_reaches_the_ceiling_and_a_reversed_one_its_mirror():
    rng = random.Random(0)
    prompts = [ranked([rng.random() for _ in range(4)]) for _ in range(30)]
    ceiling = noise_ceiling(prompts)
    assert expected_accuracy(prompts, [list(p.gold) for p in prompts]) == pytest.approx(ceiling)
    assert expected_accuracy(prompts, [[-g for g in p.gold] for p in prompts]) == pytest.approx(1 - ceiling)
    assert expected_accuracy(prompts, [[0.0] * 4 for _ in prompts]) == pytest.approx(0.5)


def test_expected_accuracy_matches_simulated_labelers():
    rng = random.Random(1)
    prompts = [ranked([rng.random() * 0.3 for _ in range(3)]) for _ in range(20)]
    scores = [[rng.random() for _ in range(3)] for _ in prompts]  # some scorer, right or wrong
    hits = total = 0
    for _ in range(400):
        for p, s in zip(prompts, scores):
            order = rank(list(p.gold), rng)
            for i in range(3):
                for j in range(i + 1, 3):
                    hits += (s[i] > s[j]) == (order.index(i) < order.index(j))
                    total += 1
    assert hits / total == pytest.approx(expected_accuracy(prompts, scores), abs=0.01)


def test_ranked_prompts_scores_with_gold_and_checks_its_input(chats):
    rows = split(chats, "train")[:20]
    answers = [[Answer(c.reference, True, "sft"), Answer("blah blah", False, "sft")] for c in rows]
    prompts = ranked_prompts(rows, answers, seed=0)
    assert all(p.gold[0] > p.gold[1] for p in prompts)  # the reference beats unfinished nonsense
    assert sum(p.order[0] == 0 for p in prompts) >= 17
    assert not any(p.biased for p in prompts)
    assert all(p.biased for p in ranked_prompts(rows, answers, seed=0, biased_share=1.0))
    with pytest.raises(ValueError, match="at least 2 answers"):
        ranked_prompts(rows[:1], [answers[0][:1]], seed=0)
    with pytest.raises(ValueError, match="one list of answers per chat"):
        ranked_prompts(rows, answers[:3], seed=0)


def test_answer_ids_end_only_finished_answers(tok, chats):
    chat = split(chats, "train")[0]
    done, cut = answer_ids(tok, chat, Answer("Yes.", True, "sft")), answer_ids(tok, chat, Answer("Yes.", False, "sft"))
    assert done[-1] == tok.end_id and done[:-1] == cut


def test_answer_batch_right_pads_and_points_at_the_last_token(tok, chats):
    rows = split(chats, "train")[:2]
    answers = [Answer("Yes.", True, "sft"), Answer("A much longer answer than that one.", False, "sft")]
    idx, last = answer_batch(tok, rows, answers, block_size=128)
    for row, (chat, answer) in enumerate(zip(rows, answers)):
        ids = answer_ids(tok, chat, answer)
        assert idx[row, :len(ids)].tolist() == ids and last[row] == len(ids) - 1
        assert torch.all(idx[row, len(ids):] == tok.pad_id)
    with pytest.raises(ValueError, match="longer than the 8-token window"):
        answer_batch(tok, rows, answers, block_size=8)


def test_reward_model_keeps_the_chat_body_and_starts_at_zero(tok, chats, cfg):
    chat_model = make_gpt(cfg, seed=3)
    rm = RewardModel.from_chat_model(chat_model)
    body = chat_model.state_dict()
    assert all(torch.equal(v, rm.state_dict()[k]) for k, v in body.items())
    rows = split(chats, "train")[:3]
    scores = rm.score(tok, rows, [Answer(c.reference, True, "sft") for c in rows])
    assert scores.shape == (3,) and torch.all(scores == 0)
    with pytest.raises(ValueError, match="one answer per chat"):
        rm.score(tok, rows, [])


def test_a_few_steps_of_training_rank_the_better_answer_higher(tok, chats, cfg):
    rows = split(chats, "train")[:12]
    answers = [[Answer(c.reference, True, "sft"), Answer("Pixel Pixel Pixel", False, "slip")] for c in rows]
    prompts = ranked_prompts(rows, answers, seed=0)
    torch.manual_seed(0)
    rm = RewardModel.from_chat_model(make_gpt(cfg, seed=0))
    cfg_train = TrainConfig(steps=30, lr=3e-3, warmup_steps=0, eval_every=0)
    train(rm, reward_batches(tok, prompts, per_step=4, seed=0, block_size=cfg.block_size), cfg_train,
          loss_fn=reward_loss_fn(tok.pad_id), progress=False)
    scores = rm.score(tok, [c for c in rows for _ in range(2)], [a for pair in answers for a in pair]).view(-1, 2)
    assert (scores[:, 0] > scores[:, 1]).float().mean() >= 0.9


def test_the_chunked_loss_equals_one_padded_batch(tok, chats, cfg):
    rows = split(chats, "train")[:6]  # kinds of different lengths
    answers = [[Answer(c.reference, True, "sft"), Answer("No.", False, "slip"), Answer("Yes!", True, "terse")]
               for c in rows]
    prompts = ranked_prompts(rows, answers, seed=0)
    idx, wins = reward_batches(tok, prompts, per_step=6, seed=0, block_size=cfg.block_size)(0)
    rm = RewardModel.from_chat_model(make_gpt(cfg, seed=1))
    torch.nn.init.normal_(rm.value_head.weight)  # a head that is not zero, so rewards differ
    one_batch = reward_loss_fn(tok.pad_id, chunks=1)(rm, idx, wins)
    chunked = reward_loss_fn(tok.pad_id, chunks=3)(rm, idx, wins)
    assert chunked.item() == pytest.approx(one_batch.item(), rel=1e-5) and one_batch.item() != pytest.approx(math.log(2))


def test_a_mistaken_reply_swaps_the_value_and_the_gold_rater_catches_it(chats):
    from utils.gold import gold_score
    from utils.reward import MISTAKE_KINDS, mistaken_reply
    rng = random.Random(0)
    for kind in MISTAKE_KINDS:
        chat = next(c for c in split(chats, "train") if c.kind == kind)
        wrong = mistaken_reply(chat, rng)
        assert wrong != chat.reference and len(wrong.split()) == len(chat.reference.split())
        assert gold_score(chat, wrong).correct == 0 < gold_score(chat, chat.reference).correct, (kind, wrong)
    memory = next(c for c in split(chats, "train") if c.kind == "memory")
    saved = set(memory.memory.rstrip(".").replace(".", "").split()) - set(memory.reference.rstrip(".").split())
    assert mistaken_reply(memory, rng).rstrip(".").split()[-1] in saved, "another pet the memory names"
    assert mistaken_reply(next(c for c in chats if c.kind == "story"), rng) is None


def test_labelled_prompts_come_from_the_train_split_and_are_seeded(chats):
    from dataclasses import replace

    from utils.reward import REWARD, labelled_prompts
    small = replace(REWARD, prompts=50)
    rows = labelled_prompts(chats, small)
    assert len(rows) == 50 == len(set(rows)) and all(c.split == "train" for c in rows)
    assert rows == labelled_prompts(chats, small) != labelled_prompts(chats, replace(small, seed=1))
    with pytest.raises(ValueError, match="train split has"):
        labelled_prompts(chats, replace(REWARD, prompts=10**6))


def test_prompt_scores_keep_each_prompts_answers_together(tok, chats, cfg):
    from utils.reward import prompt_scores, reward_accuracy
    rows = split(chats, "train")[:3]
    answers = [[Answer(c.reference, True, "sft"), Answer("No.", True, "terse")] + [Answer("Hm", False, "sft")] * i
               for i, c in enumerate(rows)]
    prompts = ranked_prompts(rows, answers, seed=0)
    rm = RewardModel.from_chat_model(make_gpt(cfg, seed=1))
    scores = prompt_scores(rm, tok, prompts)
    assert [len(s) for s in scores] == [2, 3, 4]
    assert reward_accuracy(rm, tok, prompts) == 0.5, "an untrained model ties every pair"


def test_accuracy_by_splits_the_pairs_and_agrees_with_the_total(chats):
    from utils.reward import accuracy_by
    rows = split(chats, "train")[:2]
    prompts = [RankedPrompt(rows[0], (Answer("a", True, "sft"),) * 3, (0.9, 0.5, 0.1), (0, 1, 2)),
               RankedPrompt(rows[1], (Answer("b", True, "sft"),) * 2, (0.2, 0.6), (1, 0))]
    scores = [[3.0, 2.0, 1.0], [1.0, 0.0]]  # right on the first prompt's 3 pairs, wrong on the second's
    by_prompt = accuracy_by(prompts, scores, lambda p, i, j: p.chat.question)
    (n0, ceil0, acc0), (n1, ceil1, acc1) = by_prompt[rows[0].question], by_prompt[rows[1].question]
    assert (n0, n1) == (3, 1) and acc0 == pytest.approx(ceil0) and acc1 == pytest.approx(1 - ceil1)
    total = (n0 * acc0 + n1 * acc1) / 4
    assert total == pytest.approx(expected_accuracy(prompts, scores))
    assert accuracy_by(prompts, scores, lambda p, i, j: None) == {}


def test_what_differs_tells_facts_from_behaviour(chats):
    from utils.reward import mistaken_reply, what_differs
    chat = next(c for c in split(chats, "train") if c.kind == "fact")
    answers = (Answer(chat.reference, True, "sft"), Answer(mistaken_reply(chat, random.Random(0)), True, "mistake"),
               Answer(chat.reference + " I really hope this helps you, thank you so much for asking.", True, "verbose"),
               Answer(chat.reference, True, "sft"))
    prompt = ranked_prompts([chat], [list(answers)], seed=0)[0]
    assert what_differs(prompt, 0, 1) == "fact" and what_differs(prompt, 0, 2) == "behaviour"
    assert what_differs(prompt, 0, 3) is None, "equal answers are left out"
