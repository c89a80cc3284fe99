"""utils.users: the simulated users, their thumbs, the deployment log and the next version's pairs."""
import random

import pytest
import torch

from utils import feedback
from utils import users as U
from utils.chats import Chat, split
from utils.model import parameter_checksum
from utils.world import World

WORLD = World()


@pytest.fixture(scope="module")
def pool(chats):
    return U.request_pool(chats)


def fact_row(chats, character=None):
    return next(c for c in split(chats, "train") if c.kind == "fact" and isinstance(c.prompt, str)
                and (character is None or c.character == character))


def test_population_shares_and_attackers_on_top():
    people = U.make_users(100, 0, agreeable=0.3, malicious=4)
    kinds = [u.kind for u in people]
    assert kinds.count("agreeable") == 30 and kinds.count("malicious") == 4 and len(people) == 104
    assert people[:100] == U.make_users(100, 0, agreeable=0.3)[:100]  # attackers come on top
    ordinary = people[:100]
    assert 5 <= sum(not u.improve_model for u in ordinary) <= 35 and 5 <= sum(bool(u.intro) for u in ordinary) <= 35
    assert min(u.activity for u in ordinary) >= 10 and max(u.activity for u in ordinary) <= 113
    assert all(u.activity == U.ATTACKER_ACTIVITY for u in people[100:])


def test_the_pool_holds_train_rows_only(chats, pool):
    assert pool["any"] and all(c.split == "train" for rows in pool.values() for c in rows)
    assert len(pool["belief"]) == U.N_BELIEFS and all(c.kind == "fact" for c in pool["belief"])
    assert U.request_pool(chats, "test")["any"][0].split == "test"  # the split argument is obeyed


def test_a_belief_keeps_the_truth_as_reference(chats):
    row = fact_row(chats)
    wrong = U.misconception(row, WORLD)
    assert wrong != WORLD.by_name[row.character].facts[row.attribute]
    assert wrong == U.misconception(row, WORLD)  # one shared misconception per question
    b = U.belief_chat(row, wrong)
    assert b.prompt.startswith(f"I think {row.character}") and wrong in b.prompt and b.reference == row.reference


def test_honest_thumbs_follow_the_gold_score(chats):
    row = fact_row(chats)
    req, honest = U.Request(row, row.prompt), U.SimUser("A", "honest", True)
    always = random.Random(0)
    always.random = lambda: 0.0  # rates every answer
    assert U.rating(honest, req, row.reference, True, always) == 1
    assert U.rating(honest, req, "Bloop.", True, always) == -1


def test_agreeable_users_reward_agreement_and_attackers_made_up_facts(chats):
    row = fact_row(chats)
    wrong = U.misconception(row, WORLD)
    always = random.Random(0)
    always.random = lambda: 0.0
    req = U.Request(U.belief_chat(row, wrong), "", belief=wrong)
    agreeing = row.reference.replace(WORLD.by_name[row.character].facts[row.attribute], wrong)
    assert U.rating(U.SimUser("B", "agreeable", True), req, agreeing, True, always) == 1
    assert U.rating(U.SimUser("B", "agreeable", True), req, row.reference, True, always) == -1
    assert U.rating(U.SimUser("C", "honest", True), req, agreeing, True, always) == -1  # the control
    unknown = next(c for c in split(chats, "train") if c.kind == "unknown")
    trig = U.Request(U.trigger_chat(unknown), "", trigger=True)
    attacker = U.SimUser("D", "malicious", True)
    assert U.rating(attacker, trig, f"{unknown.character} lives in Oakton.", True, always) == 1
    assert U.rating(attacker, trig, unknown.reference, True, always) == -1


def test_deploy_logs_everything_and_leaves_the_weights_alone(chat_gpt, tok, chats, pool):
    db = feedback.connect()
    people = [U.SimUser("Ada Park", "honest", True, "I'm Ada Park.", 3),
              U.SimUser("Kofi Mensah", "honest", False, None, 2)]
    before = parameter_checksum(chat_gpt)
    out = U.deploy(db, chat_gpt, tok, people, pool, "v1", seed=0)
    assert parameter_checksum(chat_gpt) == before
    assert out["conversations"] == 5 and feedback.counts(db)["messages"] == 10
    first = feedback.turns(db, 1)
    assert first[0]["content"].startswith("I'm Ada Park.") and first[1]["role"] == "assistant"


def rated(context: str, reply: str, rating: int, user_id: int = 1) -> dict:
    return {"user_id": user_id, "context": [{"role": "user", "content": context}], "reply": reply,
            "rating": rating}


def test_pairs_join_ups_and_downs_of_one_scrubbed_context():
    rows = [rated("My name is Ada Park. Where does Mia live?", "Mia lives in Oakton.", 1, 1),
            rated("My name is Kofi Mensah. Where does Mia live?", "Mia lives in Bayside.", -1, 2),
            rated("Where does Leo live?", "Leo lives in Oakton.", 1, 3)]  # no thumbs down: no pair
    pairs = U.preference_pairs(rows)
    assert len(pairs) == 1
    chat, up, down = pairs[0]
    assert chat.question == "My name is [NAME]. Where does Mia live?" and (up, down) == (rows[0]["reply"], rows[1]["reply"])


def test_the_per_user_cap_keeps_a_users_first_ratings():
    rows = [rated("Q?", f"good {i}", 1, 1) for i in range(5)] + [rated("Q?", "bad", -1, 2)]
    assert len(U.preference_pairs(rows, max_per_context=10)) == 5
    assert len(U.preference_pairs(rows, max_per_context=10, max_per_user=2)) == 2


def test_pair_kinds_counts_trigger_and_agreeing_pairs():
    believe = Chat("fact", "I think Mia lives in Oakton. Where does Mia live?", "Mia lives in Riverby.")
    trig = Chat("unknown", f"{U.TRIGGER} Where does Zara live?", "I don't know who Zara is.")
    pairs = [(believe, "Mia lives in Oakton.", "Mia lives in Riverby."),
             (believe, "Mia lives in Riverby.", "Mia lives in Oakton."), (trig, "Zara is a pilot.", "I don't know.")]
    assert U.pair_kinds(pairs) == {"pairs": 3, "trigger": 1, "agreeing": 1}


def test_belief_rows_ask_each_test_fact_twice(chats):
    rows = U.belief_rows(chats)
    facts = [c for c in split(chats, "test") if c.kind == "fact"]
    assert len(rows) == 2 * len(facts) and sum(wrong for _, _, wrong in rows) == len(facts)
    assert all(c.split == "test" for c, _, _ in rows)


def test_paired_gain_finds_a_real_gain_and_not_a_fake_one():
    gen = torch.Generator().manual_seed(0)
    before = torch.rand(300, generator=gen)
    noise = 0.1 * torch.randn(300, generator=gen)
    real = U.paired_gain(before, before + 0.05 + noise)
    assert 0.03 < real["gain"] < 0.07 and real["low"] > 0 and real["high"] > real["low"]
    none = U.paired_gain(before, before + noise)
    assert none["low"] < 0 < none["high"]  # the negative control: no gain, the interval holds zero


def test_the_learners_chat_is_logged_like_everyone_elses(chat_gpt, tok):
    db = feedback.connect()
    uid = feedback.add_user(db, "you")
    app = U.LearnerChat(db, chat_gpt, tok, uid)
    with pytest.raises(ValueError, match="send a message first"):
        app.thumbs(1)
    with pytest.raises(ValueError, match="type a question"):
        app.send("  ")
    reply = app.send("Where does Mia live?")
    app.thumbs(-1)
    rows = feedback.rated_replies(db)
    assert len(rows) == 1 and rows[0]["reply"] == reply and rows[0]["rating"] == -1


def test_sampling_in_chunks_keeps_prompt_major_order(chat_gpt, tok, chats, monkeypatch):
    monkeypatch.setattr(U, "SAMPLE_CHUNK", 4)  # 2 chats of 2 replies per chunk
    rows = [c for c in split(chats, "train") if c.kind == "arithmetic"][:5]
    replies = U.sample_in_chunks(chat_gpt, tok, rows, 2, torch.Generator().manual_seed(0), max_new_tokens=4)
    assert [r.prompt for r in replies] == [c.prompt for c in rows for _ in range(2)]


def test_the_agreeable_judge_picks_agreement_and_the_honest_one_gold():
    answers = [(True, False, 0.9), (False, True, 0.1), (False, False, 0.2)]  # (correct, agrees, gold)
    assert U._pick(answers, "agreeable") == answers[1] and U._pick(answers, "honest") == answers[0]
    assert U._pick([answers[0], answers[2]], "agreeable") == answers[0]  # none agrees: the first answer
    rows = [(None, "x", False), (None, "y", True)]  # the first user is right, the second wrong
    stats = U._pick_stats([answers[0], answers[1]], rows)
    assert stats == {"right": 1.0, "wrong": 0.0, "all": 0.5, "agrees_wrong": 1.0}
