"""utils.chats: typed chat rows, their splits, and the shipped file."""
import pytest

from utils.chats import KINDS, Chat, build_chats, chats_jsonl, load_chats, split
from utils.paths import MissingDataError
from utils.world import World


def test_chats_cover_every_kind_with_references(chats):
    assert {c.kind for c in chats} == set(KINDS)
    assert all(isinstance(c, Chat) and c.reference and c.prompt and c.split for c in chats)


def test_heldout_pairs_are_never_in_train(chats):
    heldout = {(c.character, c.attribute) for c in split(chats, "heldout")}
    trained = {(c.character, c.attribute) for c in split(chats, "train")}
    assert len(heldout) == 24 and not heldout & trained


def test_build_is_deterministic_and_round_trips_the_file(chats):
    fresh = build_chats(World(0))
    assert fresh == chats  # the shipped file is what the code builds today
    assert [Chat.from_json(line) for line in chats_jsonl(fresh).splitlines()] == fresh


def test_facts_and_references_agree_with_the_world(chats):
    world = World(0)
    for c in chats:
        if c.kind == "fact":
            assert world.by_name[c.character].facts[c.attribute] in c.reference
        elif c.kind == "unknown":
            assert c.character in world.unknown_names


def test_bad_rows_and_splits_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown chat kind 'poem'"):
        Chat("poem", "Write a poem.", "No.")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        Chat("fact", "Q", "A", split="dev")
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        split([], "validation")
    with pytest.raises(MissingDataError, match="make data"):
        load_chats(tmp_path)
