"""utils.chats: typed chat rows, their splits (clean held-out tests), and the shipped file."""
import pytest

from utils.chats import (
    KINDS,
    MULTI_TURN_KINDS,
    PET_NAMES,
    Chat,
    build_chats,
    callback_chat,
    chats_jsonl,
    fact_chat,
    load_chats,
    pet_pairs_in,
    split,
    stated_pairs,
    unseen_pairs,
    unseen_pet_pairs,
    user,
)
from utils.paths import MissingDataError
from utils.world import World

WORLD = World(0)


def test_chats_cover_every_kind_with_references(chats):
    assert {c.kind for c in chats} == set(KINDS)
    assert all(isinstance(c, Chat) and c.reference and c.prompt and c.split for c in chats)
    assert {c.kind for c in split(chats, "test")} == set(KINDS)


def test_multi_turn_prompts_are_conversations_ending_with_the_user(chats):
    for c in chats:
        if c.kind in MULTI_TURN_KINDS:
            assert isinstance(c.prompt, tuple) and c.turns[-1]["role"] == "user"
            assert [t["role"] for t in c.turns] == ["user", "assistant"] * (len(c.turns) // 2) + ["user"]
        else:
            assert isinstance(c.prompt, str) and c.question == c.prompt
    assert all(c.memory for c in chats if c.kind == "memory")
    assert not any(c.memory for c in chats if c.kind != "memory")


def test_no_test_prompt_is_a_train_prompt(chats):
    train = {(c.prompt, c.memory) for c in split(chats, "train")}
    assert not train & {(c.prompt, c.memory) for c in split(chats, "test") + split(chats, "heldout")}


def test_fact_pairs_are_split_whole_and_heldout_pairs_never_trained(chats):
    by_split = {s: {(c.character, c.attribute) for c in split(chats, s) if c.kind == "fact"} for s in
                ("train", "test", "heldout")}
    assert len(by_split["heldout"]) == 24 and len(by_split["test"]) > 80
    assert not by_split["train"] & by_split["test"] and not by_split["train"] & by_split["heldout"]
    asked_in_train = {(c.character, c.attribute) for c in split(chats, "train") if c.character and c.attribute}
    assert not asked_in_train & unseen_pairs(chats)  # no train row's last question asks an unseen pair


def test_no_train_row_states_a_test_or_heldout_fact(chats):
    unseen = unseen_pairs(chats)
    for c in split(chats, "train"):
        subject = c.character if c.kind == "story" else None
        assert not stated_pairs(c.text(), WORLD, subject) & unseen, c


def test_stated_pairs_catches_pronouns_and_friends():
    ava = WORLD.by_name["Ava"]
    assert ("Ava", "pet") in stated_pairs(f"She had a {ava.facts['pet']}.", WORLD, subject="Ava")
    assert ("Ava", "pet") not in stated_pairs(f"She had a {ava.facts['pet']}.", WORLD)  # nobody named
    leo = WORLD.by_name["Leo"]
    assert ("Leo", "town") in stated_pairs(f"One day, she met Leo, who lived in {leo.facts['town']}.", WORLD)


def test_unknown_names_of_test_rows_never_appear_in_train(chats):
    unknown_train = {c.character for c in split(chats, "train") if c.kind == "unknown"}
    unknown_test = {c.character for c in split(chats, "test") if c.kind == "unknown"}
    assert len(unknown_test) == 4 and not unknown_train & unknown_test
    train_words = {w for c in split(chats, "train") for w in c.text().replace(".", " ").split()}
    assert not unknown_test & train_words


def test_pet_name_pairs_of_test_rows_are_never_stated_in_train(chats):
    unseen = unseen_pet_pairs(chats)
    trained = {pair for c in split(chats, "train") for pair in pet_pairs_in(c.text())}
    assert len(unseen) > 25 and not unseen & trained
    assert {n for _, n in trained} == set(PET_NAMES)  # every name is trained, with other pets
    assert pet_pairs_in("My dog is called Rex. Your cat is called Luna.") == {("dog", "Rex"), ("cat", "Luna")}


def test_sums_are_split_as_items_in_either_order(chats):
    def item(c):
        a, op, b = c.question.removeprefix("What is ").rstrip("?").split()
        return op, frozenset((a, b)) if op == "plus" else (a, b)
    train = {item(c) for c in split(chats, "train") if c.kind == "arithmetic"}
    test = {item(c) for c in split(chats, "test") if c.kind == "arithmetic"}
    assert len(train) + len(test) == 110 and not train & test


def test_build_is_deterministic_and_round_trips_the_file(chats):
    fresh = build_chats(WORLD)
    assert fresh == chats  # the shipped file is what the code builds today
    assert [Chat.from_json(line) for line in chats_jsonl(fresh).splitlines()] == fresh
    assert len(set(fresh)) > 0.99 * len(fresh)  # rows, multi-turn ones too, are hashable


def test_facts_and_references_agree_with_the_world(chats):
    for c in chats:
        if c.kind in ("fact", "followup", "correction"):
            assert WORLD.by_name[c.character].facts[c.attribute] in c.reference
            assert c.character in c.reference
        elif c.kind == "unknown":
            assert c.character in WORLD.unknown_names
        elif c.kind in ("callback", "memory", "context"):
            name = c.reference.rstrip(".").split()[-1]
            assert name in (c.memory or "") + " ".join(t["content"] for t in c.turns)


def test_bad_rows_and_splits_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown chat kind 'poem'"):
        Chat("poem", "Write a poem.", "No.")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        Chat("fact", "Q", "A", split="dev")
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        split([], "validation")
    with pytest.raises(ValueError, match="must end with the user's turn"):
        Chat("followup", (user("Hi"), {"role": "assistant", "content": "Hello"}), "A")
    with pytest.raises(ValueError, match="turn 1 of a chat prompt"):
        Chat("followup", (user("Hi"), user("Hi again")), "A")
    with pytest.raises(ValueError, match="at least one exchange"):
        callback_chat("cat", "Rex", [])
    with pytest.raises(MissingDataError, match="make data"):
        load_chats(tmp_path)
    assert fact_chat(WORLD.by_name["Mia"], "pet", "What is {name}'s pet?").turns == [user("What is Mia's pet?")]
