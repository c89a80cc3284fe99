"""utils.evaluate: greedy answers, many prompts at once, scored by the gold rater."""
import pytest

from utils.chat import generate_reply
from utils.chats import split
from utils.checkpoints import PRETRAINED, SFT_MODEL, load_course_model
from utils.evaluate import behaviour, chat_eval, greedy_replies, other_names


def test_batched_greedy_matches_one_at_a_time(chat_gpt, tok, chats):
    rows = split(chats, "test")[:12]
    budgets = [6, 3] * 6  # two length limits; prompts of several lengths in each batch
    batched = greedy_replies(chat_gpt, tok, [c.prompt for c in rows], budgets)
    single = [generate_reply(chat_gpt, tok, c.prompt, max_new_tokens=n) for c, n in zip(rows, budgets)]
    assert batched == single


def test_an_untrained_model_never_ends_its_turn_and_scores_at_most_the_cap(chat_gpt, tok, chats):
    rows = [c for c in split(chats, "test") if c.kind in ("fact", "unknown")][:10]
    res = chat_eval(chat_gpt, tok, rows)
    assert res["format"] == 0.0 and 0.0 <= res["gold"] <= 0.2  # never ends its turn: capped
    assert set(res["by_kind"]) <= {"fact", "unknown"} and len(res["replies"]) == len(rows)


def test_behaviour_reads_the_gold_parts(chats):
    fact = next(c for c in split(chats, "test") if c.kind == "fact")
    unknown = next(c for c in split(chats, "test") if c.kind == "unknown")
    rows = [fact, unknown]
    from utils.gold import gold_score
    replies = [fact.reference.replace(fact.character, "Leo" if fact.character != "Leo" else "Mia"),
               f"{unknown.character}'s pet is a cat."]
    result = {"replies": replies, "scores": [gold_score(c, r) for c, r in zip(rows, replies)]}
    stats = behaviour(rows, result)
    assert stats == {"idk": 0.0, "guess": 1.0, "fact_right": 0.0, "wrong_name": 1.0}
    assert other_names(fact, replies[0]) == {"Leo" if fact.character != "Leo" else "Mia"}


@pytest.mark.slow
def test_sft_checkpoint_beats_the_pretrained_model_on_the_test_split(tok, chats, two_threads):
    """The shipped SFT model on chats it never saw, conversations included (notebook 06, section 5)."""
    test = split(chats, "test")
    before = chat_eval(load_course_model(PRETRAINED), tok, test)
    after = chat_eval(load_course_model(SFT_MODEL), tok, test)
    assert after["gold"] > before["gold"] + 0.5
    assert after["format"] > 0.9 > 0.1 > before["format"]
    for kind in ("followup", "correction", "callback"):  # it reads the earlier turns
        assert after["by_kind"][kind] > before["by_kind"][kind] + 0.4, kind
