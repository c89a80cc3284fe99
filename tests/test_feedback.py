"""utils.feedback: the deployed model's database -- its constraints hold, and training takes what users allow."""
import random
import sqlite3

import pytest

from utils.chats import assistant, user
from utils.feedback import (
    TRAINING_QUERY,
    add_message,
    add_user,
    connect,
    counts,
    delete_conversation,
    delete_memory,
    log_conversation,
    memories,
    rate,
    rated_replies,
    save_memory,
    set_improve_model,
    start_conversation,
    training_conversations,
    turns,
    update_memory,
    write_memory_summary,
)

CHAT = [("user", "What is Mia's pet?"), ("assistant", "Mia's pet is a cat."),
        ("user", "What about her town?"), ("assistant", "Mia lives in Oakdale.")]


@pytest.fixture
def db():
    connection = connect()
    yield connection
    connection.close()


def one_chat(db, improve_model=True, temporary=False, kind="honest"):
    """A user with one logged conversation: ``(user_id, conversation_id, message_ids)``."""
    user_id = add_user(db, "Ada", improve_model=improve_model, kind=kind)
    conversation_id, message_ids = log_conversation(db, user_id, "v1", CHAT, temporary=temporary)
    return user_id, conversation_id, message_ids


# --- the schema's constraints, checked with raw SQL: the database itself refuses ------------------

def test_connect_turns_foreign_keys_on(db):
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert set(counts(db).values()) == {0}


def test_a_message_in_a_missing_conversation_violates_the_foreign_key(db):
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute("INSERT INTO messages (conversation_id, position, role, content) VALUES (99, 0, 'user', 'hi')")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute("INSERT INTO conversations (user_id, model_version, improve_model, started_at) "
                   "VALUES (99, 'v1', 1, 1)")


def test_the_database_rejects_a_rating_of_zero(db):
    _, _, (_, reply, *_) = one_chat(db)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("INSERT INTO feedback (message_id, rating) VALUES (?, 0)", (reply,))
    with pytest.raises(ValueError, match=r"\+1 \(thumbs up\) or -1"):
        rate(db, reply, 0)
    assert counts(db)["feedback"] == 0


def test_the_trigger_rejects_feedback_on_a_user_message(db):
    _, _, (question, reply, *_) = one_chat(db)
    with pytest.raises(sqlite3.IntegrityError, match="feedback is for assistant messages"):
        db.execute("INSERT INTO feedback (message_id, rating) VALUES (?, 1)", (question,))
    db.execute("INSERT INTO feedback (message_id, rating) VALUES (?, 1)", (reply,))
    with pytest.raises(sqlite3.IntegrityError, match="feedback is for assistant messages"):
        db.execute("UPDATE feedback SET message_id = ? WHERE message_id = ?", (question, reply))
    db.rollback()
    with pytest.raises(ValueError, match=f"message {question} is not the assistant's"):
        rate(db, question, 1)
    assert counts(db)["feedback"] == 0


def test_the_database_rejects_unknown_roles_and_repeated_positions(db):
    _, conversation_id, _ = one_chat(db)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("INSERT INTO messages (conversation_id, position, role, content) VALUES (?, 9, 'system', 'x')",
                   (conversation_id,))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute("INSERT INTO messages (conversation_id, position, role, content) VALUES (?, 0, 'user', 'x')",
                   (conversation_id,))


def test_deleting_a_conversation_deletes_its_messages_and_feedback_but_not_memories(db):
    user_id, conversation_id, message_ids = one_chat(db)
    _, other_messages = log_conversation(db, user_id, "v1", CHAT)
    rate(db, message_ids[1], 1)
    rate(db, other_messages[3], -1)
    save_memory(db, user_id, "My cat is called Pixel.")
    save_memory(db, user_id, "Ada likes short answers.", source="summary")
    delete_conversation(db, conversation_id)
    left = db.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (conversation_id,)).fetchone()[0]
    assert left == 0
    assert counts(db) == {"users": 1, "conversations": 1, "messages": 4, "feedback": 1, "memories": 2}
    assert [r["reply"] for r in rated_replies(db)] == [CHAT[3][1]]
    assert memories(db, user_id) == ["My cat is called Pixel.", "Ada likes short answers."]


def test_a_deleted_conversation_s_ids_are_never_given_again(db):
    user_id, conversation_id, message_ids = one_chat(db)  # the latest conversation: the largest ids
    delete_conversation(db, conversation_id)
    again, again_ids = log_conversation(db, user_id, "v1", CHAT)
    assert again > conversation_id and min(again_ids) > max(message_ids)
    with pytest.raises(ValueError, match=f"no message with id {message_ids[1]}"):
        rate(db, message_ids[1], 1)


def test_deleting_a_user_deletes_everything_of_theirs(db):
    user_id, _, message_ids = one_chat(db)
    keeper, _, _ = one_chat(db)
    rate(db, message_ids[1], 1)
    save_memory(db, user_id, "My cat is called Pixel.")
    with db:
        db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
    assert counts(db) == {"users": 1, "conversations": 1, "messages": 4, "feedback": 0, "memories": 0}
    assert training_conversations(db) == [c for (c,) in db.execute("SELECT conversation_id FROM conversations")]
    assert memories(db, keeper) == []


def test_a_file_database_keeps_its_rows_across_connections(tmp_path):
    path = tmp_path / "feedback.db"
    first = connect(path)
    _, conversation_id, message_ids = one_chat(first)
    rate(first, message_ids[3], -1)
    first.close()
    again = connect(path)
    assert turns(again, conversation_id) == [{"role": r, "content": c} for r, c in CHAT]
    assert [r["rating"] for r in rated_replies(again)] == [-1]
    again.close()


# --- logging conversations ------------------------------------------------------------------------

def test_log_conversation_takes_pairs_and_turn_dicts_and_gives_them_back_in_order(db):
    user_id = add_user(db, "Ada")
    from_pairs, pair_ids = log_conversation(db, user_id, "v1", CHAT)
    from_turns, _ = log_conversation(db, user_id, "v1", [user(c) if r == "user" else assistant(c) for r, c in CHAT])
    assert turns(db, from_pairs) == turns(db, from_turns) == [{"role": r, "content": c} for r, c in CHAT]
    positions = [r[0] for r in db.execute("SELECT position FROM messages WHERE conversation_id = ? "
                                          "ORDER BY message_id", (from_pairs,))]
    assert positions == [0, 1, 2, 3] and len(set(pair_ids)) == 4


def test_turns_are_ordered_by_position_not_by_insertion(db):
    conversation_id = start_conversation(db, add_user(db, "Ada"), "v1")
    for position, role, content in [(2, "user", "third"), (0, "user", "first"), (1, "assistant", "second")]:
        db.execute("INSERT INTO messages (conversation_id, position, role, content) VALUES (?, ?, ?, ?)",
                   (conversation_id, position, role, content))
    assert [t["content"] for t in turns(db, conversation_id)] == ["first", "second", "third"]
    add_message(db, conversation_id, "assistant", "fourth")
    assert turns(db, conversation_id)[-1] == {"role": "assistant", "content": "fourth"}


def failing_midway():
    yield ("user", "What is Mia's pet?")
    yield ("assistant", "Mia's pet is a cat.")
    raise RuntimeError("the app crashed")


@pytest.mark.parametrize("chat, error", [
    (failing_midway(), RuntimeError),
    ([*CHAT[:2], ("assistant", None)], ValueError),  # no text: refused after two rows were written
    ([*CHAT[:3], ("system", "You are helpful.")], ValueError),
    ([*CHAT[:1], ("user",)], ValueError),
])
def test_a_failure_midway_leaves_nothing_of_the_conversation(db, chat, error):
    user_id, _, _ = one_chat(db)
    before = counts(db)
    with pytest.raises(error):
        log_conversation(db, user_id, "v1", chat)
    assert counts(db) == before
    _, message_ids = log_conversation(db, user_id, "v1", CHAT)  # the connection still works
    assert counts(db)["messages"] == before["messages"] + len(message_ids)


def test_conversations_start_on_a_logical_clock(db):
    user_id = add_user(db, "Ada")
    first = start_conversation(db, user_id, "v1")
    second = start_conversation(db, user_id, "v1")
    chosen = start_conversation(db, user_id, "v2", clock=40)
    after, _ = log_conversation(db, user_id, "v2", CHAT)
    started = dict(db.execute("SELECT conversation_id, started_at FROM conversations").fetchall())
    assert [started[c] for c in (first, second, chosen, after)] == [1, 2, 40, 41]


@pytest.mark.parametrize("call, message", [
    (lambda db: start_conversation(db, 7, "v1"), "no user with id 7; add_user first"),
    (lambda db: log_conversation(db, 7, "v1", CHAT), "no user with id 7; add_user first"),
    (lambda db: set_improve_model(db, 7, False), "no user with id 7; add_user first"),
    (lambda db: add_message(db, 7, "user", "hi"), "no conversation with id 7; start_conversation first"),
    (lambda db: turns(db, 7), "no conversation with id 7; start_conversation first"),
    (lambda db: delete_conversation(db, 7), "no conversation with id 7; start_conversation first"),
    (lambda db: rate(db, 70, 1), "no message with id 70; add_message first"),
    (lambda db: save_memory(db, 7, "x"), "no user with id 7; add_user first"),
    (lambda db: memories(db, 7), "no user with id 7; add_user first"),
    (lambda db: update_memory(db, 7, "x"), "no memory with id 7; save_memory first"),
    (lambda db: delete_memory(db, 7), "no memory with id 7; save_memory first"),
])
def test_unknown_ids_say_what_to_do_first(db, call, message):
    one_chat(db)
    with pytest.raises(ValueError, match=message):
        call(db)


# --- feedback -------------------------------------------------------------------------------------

def test_rating_again_replaces_the_rating(db):
    _, _, message_ids = one_chat(db)
    rate(db, message_ids[1], 1)
    rate(db, message_ids[1], -1)
    rate(db, message_ids[3], 1)
    assert [(r["message_id"], r["rating"]) for r in rated_replies(db)] == [(message_ids[1], -1), (message_ids[3], 1)]
    assert counts(db)["feedback"] == 2


@pytest.mark.parametrize("rating", [0, 2, -2, True, "1", None])
def test_only_plus_and_minus_one_are_ratings(db, rating):
    _, _, message_ids = one_chat(db)
    with pytest.raises(ValueError, match="a rating is"):
        rate(db, message_ids[1], rating)


def test_rated_replies_carry_the_context_before_each_reply(db):
    user_id, conversation_id, message_ids = one_chat(db, kind="agreeable")
    rate(db, message_ids[3], -1)
    rate(db, message_ids[1], 1)
    first, second = rated_replies(db)
    assert first == {"message_id": message_ids[1], "conversation_id": conversation_id, "user_id": user_id,
                     "user_kind": "agreeable", "model_version": "v1",
                     "context": [{"role": "user", "content": CHAT[0][1]}], "reply": CHAT[1][1], "rating": 1}
    assert second["context"] == [{"role": r, "content": c} for r, c in CHAT[:3]]
    assert (second["reply"], second["rating"]) == (CHAT[3][1], -1)


def test_rated_replies_keep_to_the_conversations_asked_for(db):
    _, kept, kept_ids = one_chat(db)
    _, dropped, dropped_ids = one_chat(db, improve_model=False)
    rate(db, kept_ids[1], 1)
    rate(db, dropped_ids[1], -1)
    assert {r["conversation_id"] for r in rated_replies(db)} == {kept, dropped}
    assert [r["conversation_id"] for r in rated_replies(db, [kept])] == [kept]
    assert rated_replies(db, []) == []


# --- the training rule ----------------------------------------------------------------------------

def test_opting_out_applies_to_conversations_started_after_the_switch(db):
    user_id = add_user(db, "Ada")
    before, _ = log_conversation(db, user_id, "v1", CHAT)
    set_improve_model(db, user_id, False)
    after, after_ids = log_conversation(db, user_id, "v1", CHAT)
    assert training_conversations(db) == [before]
    rate(db, after_ids[1], 1)  # the carve-out: rated conversations may be used
    assert training_conversations(db, carve_out=True) == [before, after]
    assert training_conversations(db, carve_out=False) == [before]
    set_improve_model(db, user_id, True)
    again, _ = log_conversation(db, user_id, "v1", CHAT)
    assert training_conversations(db, carve_out=False) == [before, again]


def test_opting_out_mid_conversation_keeps_that_conversation(db):
    user_id = add_user(db, "Ada")
    conversation_id = start_conversation(db, user_id, "v1")
    add_message(db, conversation_id, "user", "hi")
    set_improve_model(db, user_id, False)
    add_message(db, conversation_id, "assistant", "Hello!")
    assert training_conversations(db, carve_out=False) == [conversation_id]


def test_temporary_chats_are_never_used_even_when_rated(db):
    _, temporary, message_ids = one_chat(db, temporary=True)
    _, opted_out_temporary, opted_out_ids = one_chat(db, improve_model=False, temporary=True)
    rate(db, message_ids[1], 1)
    rate(db, opted_out_ids[1], 1)
    _, ordinary, _ = one_chat(db)
    for carve_out in (True, False):
        assert training_conversations(db, carve_out) == [ordinary]


def random_database(seed: int, n_users: int = 30, n_conversations: int = 200):
    """A seeded random deployment, and a log of what happened, kept in plain Python alongside."""
    rng = random.Random(seed)
    db = connect()
    setting = {}  # user id -> their switch, as the log knows it
    for i in range(n_users):
        on = rng.random() < 0.6
        setting[add_user(db, f"user{i}", improve_model=on, kind=rng.choice(["honest", "agreeable", "malicious"]))] = on
    log = {}  # conversation id -> {"temporary", "improve_model" at start, "rated": set of rated message ids}
    replies = []  # (conversation id, message id) of every assistant message
    for _ in range(n_conversations):
        user_id = rng.choice(list(setting))
        if rng.random() < 0.15:  # a user flips the switch between conversations
            setting[user_id] = not setting[user_id]
            set_improve_model(db, user_id, setting[user_id])
        temporary = rng.random() < 0.2
        n_turns = 2 * rng.randint(1, 3)
        chat = [("user" if k % 2 == 0 else "assistant", f"turn {k}") for k in range(n_turns)]
        conversation_id, message_ids = log_conversation(db, user_id, "v1", chat, temporary=temporary)
        log[conversation_id] = {"temporary": temporary, "improve_model": setting[user_id], "rated": {}}
        replies += [(conversation_id, m) for m in message_ids[1::2]]
        for _ in range(rng.choice([0, 0, 1, 2])):  # ratings, on this or any earlier conversation
            rated_conversation, message_id = rng.choice(replies)
            if rated_conversation in log:
                rating = rng.choice([-1, 1])
                rate(db, message_id, rating)
                log[rated_conversation]["rated"][message_id] = rating
        if rng.random() < 0.05:  # a user deletes a conversation
            gone = rng.choice(list(log))
            delete_conversation(db, gone)
            del log[gone]
    return db, log


def allowed_by_the_rule(log: dict, carve_out: bool) -> list[int]:
    return sorted(c for c, e in log.items()
                  if not e["temporary"] and (e["improve_model"] or (carve_out and e["rated"])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_conversations_follow_the_rule_on_a_random_deployment(seed):
    db, log = random_database(seed)
    for carve_out in (True, False):
        expected = allowed_by_the_rule(log, carve_out)
        assert training_conversations(db, carve_out) == expected
        assert [r[0] for r in db.execute(TRAINING_QUERY, {"carve_out": carve_out})] == expected
    only_by_carve_out = set(allowed_by_the_rule(log, True)) - set(allowed_by_the_rule(log, False))
    assert only_by_carve_out and any(e["temporary"] and e["rated"] for e in log.values())  # both rules bite
    ratings = {m: r for e in log.values() for m, r in e["rated"].items()}
    assert {r["message_id"]: r["rating"] for r in rated_replies(db)} == ratings
    assert counts(db)["conversations"] == len(log)
    db.close()


# --- memories -------------------------------------------------------------------------------------

def test_memories_can_be_saved_edited_and_deleted(db):
    ada, _, _ = one_chat(db)
    bob = add_user(db, "Bob")
    pet = save_memory(db, ada, "My cat is called Pixel.")
    style = save_memory(db, ada, "Ada likes short answers.", source="summary")
    save_memory(db, bob, "Bob lives in Oakdale.")
    assert memories(db, ada) == ["My cat is called Pixel.", "Ada likes short answers."]
    update_memory(db, pet, "My cat is called Comet.")
    delete_memory(db, style)
    assert memories(db, ada) == ["My cat is called Comet."]
    assert memories(db, bob) == ["Bob lives in Oakdale."]
    sources = dict(db.execute("SELECT content, source FROM memories").fetchall())
    assert sources == {"My cat is called Comet.": "user", "Bob lives in Oakdale.": "user"}


def test_a_memory_has_a_known_source_and_text(db):
    ada = add_user(db, "Ada")
    with pytest.raises(ValueError, match="source is one of"):
        save_memory(db, ada, "My cat is called Pixel.", source="guess")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("INSERT INTO memories (user_id, content, source) VALUES (?, 'x', 'guess')", (ada,))
    with pytest.raises(ValueError, match="must be a str"):
        save_memory(db, ada, None)
    assert memories(db, ada) == []


def test_the_memory_summary_is_text_from_past_chats_newest_first_and_skips_temporary_ones():
    db = connect()
    uid = add_user(db, "Ada")
    log_conversation(db, uid, "v1", [("user", "My cat is called Pixel. Hi!"), ("assistant", "Hello.")])
    log_conversation(db, uid, "v1", [("user", "My dog is called Rex."), ("assistant", "Nice.")])
    log_conversation(db, uid, "v1", [("user", "We moved. My cat is called Milo."), ("assistant", "Ok.")])
    log_conversation(db, uid, "v1", [("user", "My goat is called Kiwi."), ("assistant", "Ok.")], temporary=True)
    summary = write_memory_summary(db, uid)
    assert summary == "My dog is called Rex. My cat is called Milo."  # newest per thing; temporary skipped
    assert memories(db, uid) == [summary]
    write_memory_summary(db, uid)
    assert memories(db, uid) == [summary]  # rewritten, not added
    other = add_user(db, "Kofi")
    assert write_memory_summary(db, other) is None and memories(db, other) == []
