"""Does ChatGPT learn from you? Not while you chat: it stores what you write, and a *later* model learns.

Notebook 09 deploys the chat model as "v1" and simulates its users. The weights never
change during a chat; every conversation, message and thumbs up / down goes into a real
SQLite database (``feedback_schema.sql``, foreign keys on, one transaction per logged
chat), and the next version, v2, is trained only from what that database and its users'
settings allow. The rule mirrors OpenAI's data controls:

* a user's "Improve the model for everyone" switch (``improve_model``): off, and their
  conversations are not used for training -- *except* conversations they rated, which the
  policy says may be used (``carve_out``: switch it off to see what it adds);
* the switch applies to conversations started after it is flipped: each conversation
  keeps a snapshot of the setting from its start;
* temporary chats are never used.

``TRAINING_QUERY`` is that rule in SQL; ``rated_replies`` turns the allowed thumbs into
what preference pairs are built from. Memories are saved text per user, shown in front of
later chats: they change what the model reads, not its weights, and deleting a
conversation does not delete them.

Every function takes the connection ``db`` first. A wrong id or value raises a
``ValueError`` that says what to do, not a bare ``sqlite3.IntegrityError``.
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from utils.chats import ROLES, Turn

SCHEMA_PATH = Path(__file__).with_name("feedback_schema.sql")
TABLES = ("users", "conversations", "messages", "feedback", "memories")
RATINGS = (-1, 1)
MEMORY_SOURCES = ("user", "summary")

#: The conversations the next model may be trained on (``:carve_out``: 1 or 0).
TRAINING_QUERY = """
SELECT c.conversation_id
FROM conversations AS c
WHERE NOT c.temporary
  AND (c.improve_model = 1
       OR (:carve_out AND EXISTS (SELECT 1
                                  FROM messages AS m JOIN feedback AS f ON f.message_id = m.message_id
                                  WHERE m.conversation_id = c.conversation_id)))
ORDER BY c.conversation_id
""".strip()

RATED_REPLIES_QUERY = """
SELECT m.message_id, m.conversation_id, m.position, m.content AS reply, f.rating,
       c.user_id, c.model_version, u.kind AS user_kind
FROM feedback AS f
JOIN messages AS m ON m.message_id = f.message_id
JOIN conversations AS c ON c.conversation_id = m.conversation_id
JOIN users AS u ON u.user_id = c.user_id
ORDER BY m.conversation_id, m.position
""".strip()


def connect(path: str | Path = ":memory:") -> sqlite3.Connection:
    """Open (or create) the feedback database at ``path``: schema applied, foreign keys on, rows by name."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    if db.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
        raise RuntimeError("this SQLite build cannot enforce foreign keys; the course needs one that can.")
    db.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
    return db


# --- users ---------------------------------------------------------------------------------------

def add_user(db: sqlite3.Connection, name: str, improve_model: bool = True, kind: str = "honest") -> int:
    """A new user; ``kind`` is the simulation's label for how they rate. Returns the user id."""
    with db:
        return db.execute("INSERT INTO users (name, improve_model, kind) VALUES (?, ?, ?)",
                          (name, int(bool(improve_model)), kind)).lastrowid


def set_improve_model(db: sqlite3.Connection, user_id: int, on: bool) -> None:
    """Flip the user's "Improve the model for everyone" switch; it applies to chats started from now on."""
    with db:
        changed = db.execute("UPDATE users SET improve_model = ? WHERE user_id = ?",
                             (int(bool(on)), user_id)).rowcount
    if not changed:
        raise _missing("user", user_id, "add_user")


# --- conversations and messages ------------------------------------------------------------------

def start_conversation(db: sqlite3.Connection, user_id: int, model_version: str, temporary: bool = False,
                       clock: int | None = None) -> int:
    """A new, empty conversation of ``user_id`` with ``model_version``; returns its id.

    It keeps a snapshot of the user's ``improve_model`` setting now. ``clock``: the
    logical time it starts at (default: one step after the latest conversation).
    """
    with db:
        return _start_conversation(db, user_id, model_version, temporary, clock)


def add_message(db: sqlite3.Connection, conversation_id: int, role: str, content: str) -> int:
    """Append one message (``role`` 'user' or 'assistant') to a conversation; returns its id."""
    with db:
        return _add_message(db, conversation_id, role, content)


def log_conversation(db: sqlite3.Connection, user_id: int, model_version: str, turns: Iterable,
                     temporary: bool = False, clock: int | None = None) -> tuple[int, list[int]]:
    """Store a whole conversation in one transaction: ``(conversation_id, message_ids)``.

    ``turns``: ``(role, content)`` pairs or dicts with "role" and "content" (a
    ``utils.chats.Turn``). If anything fails midway, nothing of it is left behind.
    """
    with db:
        conversation_id = _start_conversation(db, user_id, model_version, temporary, clock)
        message_ids = [_add_message(db, conversation_id, *_role_and_content(t)) for t in turns]
    return conversation_id, message_ids


def delete_conversation(db: sqlite3.Connection, conversation_id: int) -> None:
    """Delete a conversation with its messages and their feedback (the user's memories stay)."""
    with db:
        deleted = db.execute("DELETE FROM conversations WHERE conversation_id = ?", (conversation_id,)).rowcount
    if not deleted:
        raise _missing("conversation", conversation_id, "start_conversation")


def turns(db: sqlite3.Connection, conversation_id: int) -> list[Turn]:
    """The conversation's messages in order, as ``{"role", "content"}`` turns."""
    _require(db, "conversation", conversation_id, "start_conversation")
    rows = db.execute("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY position",
                      (conversation_id,))
    return [Turn(role=r["role"], content=r["content"]) for r in rows]


# --- feedback ------------------------------------------------------------------------------------

def rate(db: sqlite3.Connection, message_id: int, rating: int) -> None:
    """Thumbs up (+1) or down (-1) on an assistant message; rating it again replaces the old rating."""
    if isinstance(rating, bool) or rating not in RATINGS:
        raise ValueError(f"a rating is +1 (thumbs up) or -1 (thumbs down), got {rating!r}.")
    _require(db, "message", message_id, "add_message")
    try:
        with db:
            db.execute("INSERT INTO feedback (message_id, rating) VALUES (?, ?) "
                       "ON CONFLICT (message_id) DO UPDATE SET rating = excluded.rating", (message_id, rating))
    except sqlite3.IntegrityError as err:  # the schema's trigger: only assistant messages are rated
        raise ValueError(f"message {message_id} is not the assistant's: {err}.") from err


def training_conversations(db: sqlite3.Connection, carve_out: bool = True) -> list[int]:
    """The ids of the conversations the next model may be trained on (``TRAINING_QUERY``).

    ``carve_out``: whether a rated conversation of a user who opted out may be used.
    """
    return [r[0] for r in db.execute(TRAINING_QUERY, {"carve_out": int(bool(carve_out))})]


def rated_replies(db: sqlite3.Connection, conversation_ids: Iterable[int] | None = None) -> list[dict]:
    """Every rated assistant reply, with what preference pairs are built from.

    Each is a dict: ``message_id``, ``conversation_id``, ``user_id``, ``user_kind``,
    ``model_version``, ``context`` (the turns before the reply), ``reply`` and ``rating``.
    ``conversation_ids``: only these conversations (pass ``training_conversations(db)`` to
    keep to what the users allow); None: every conversation.
    """
    keep = None if conversation_ids is None else set(conversation_ids)
    rows = [r for r in db.execute(RATED_REPLIES_QUERY) if keep is None or r["conversation_id"] in keep]
    chats = {cid: turns(db, cid) for cid in {r["conversation_id"] for r in rows}}
    return [{"message_id": r["message_id"], "conversation_id": r["conversation_id"], "user_id": r["user_id"],
             "user_kind": r["user_kind"], "model_version": r["model_version"],
             "context": chats[r["conversation_id"]][:r["position"]], "reply": r["reply"], "rating": r["rating"]}
            for r in rows]


# --- memories ------------------------------------------------------------------------------------

def save_memory(db: sqlite3.Connection, user_id: int, content: str, source: str = "user") -> int:
    """Remember ``content`` for a user (``source`` 'user': they asked; 'summary': the background
    summary of past chats wrote it). Returns the memory id."""
    if source not in MEMORY_SOURCES:
        raise ValueError(f"a memory's source is one of {MEMORY_SOURCES}, got {source!r}.")
    _require(db, "user", user_id, "add_user")
    with db:
        return db.execute("INSERT INTO memories (user_id, content, source) VALUES (?, ?, ?)",
                          (user_id, _text(content), source)).lastrowid


def update_memory(db: sqlite3.Connection, memory_id: int, content: str) -> None:
    """Replace a memory's text (the user edited it)."""
    with db:
        changed = db.execute("UPDATE memories SET content = ? WHERE memory_id = ?",
                             (_text(content), memory_id)).rowcount
    if not changed:
        raise _missing("memory", memory_id, "save_memory")


def delete_memory(db: sqlite3.Connection, memory_id: int) -> None:
    """Forget one memory."""
    with db:
        deleted = db.execute("DELETE FROM memories WHERE memory_id = ?", (memory_id,)).rowcount
    if not deleted:
        raise _missing("memory", memory_id, "save_memory")


def memories(db: sqlite3.Connection, user_id: int) -> list[str]:
    """The user's memories, oldest first: the text the app puts before their next chat."""
    _require(db, "user", user_id, "add_user")
    rows = db.execute("SELECT content FROM memories WHERE user_id = ? ORDER BY memory_id", (user_id,))
    return [r["content"] for r in rows]


#: What the miniature memory summary keeps from a user's messages: what they said about their own things.
_ABOUT_ME = re.compile(r"\bMy (\w+) is called (\w+)\.")


def write_memory_summary(db: sqlite3.Connection, user_id: int) -> str | None:
    """The miniature of ChatGPT's background memory summary (OpenAI, 2026-06): read the user's past,
    non-temporary chats, keep what they said about their own things ("My cat is called Pixel."),
    newest first per thing, and store it as the user's one ``'summary'`` memory (replacing the last).

    It is text in the database -- visible, editable with ``update_memory`` -- that the app puts in
    front of later chats; nothing here touches a model. Returns the summary (None: nothing to keep).
    """
    _require(db, "user", user_id, "add_user")
    rows = db.execute("SELECT m.content FROM messages AS m JOIN conversations AS c USING (conversation_id) "
                      "WHERE c.user_id = ? AND NOT c.temporary AND m.role = 'user' "
                      "ORDER BY c.started_at, c.conversation_id, m.position", (user_id,)).fetchall()
    latest = {}
    for r in rows:
        for thing, name in _ABOUT_ME.findall(r["content"]):
            latest.pop(thing, None)
            latest[thing] = name
    summary = " ".join(f"My {thing} is called {name}." for thing, name in latest.items()) or None
    with db:
        db.execute("DELETE FROM memories WHERE user_id = ? AND source = 'summary'", (user_id,))
        if summary:
            db.execute("INSERT INTO memories (user_id, content, source) VALUES (?, ?, 'summary')",
                       (user_id, summary))
    return summary


def counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many rows each table holds."""
    return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


# --- helpers -------------------------------------------------------------------------------------

_ID_COLUMNS = {"user": ("users", "user_id"), "conversation": ("conversations", "conversation_id"),
               "message": ("messages", "message_id"), "memory": ("memories", "memory_id")}


def _missing(thing: str, key, how: str) -> ValueError:
    return ValueError(f"no {thing} with id {key!r}; {how} first")


def _require(db: sqlite3.Connection, thing: str, key, how: str) -> None:
    table, column = _ID_COLUMNS[thing]
    if db.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (key,)).fetchone() is None:
        raise _missing(thing, key, how)


def _text(content) -> str:
    if not isinstance(content, str):
        raise ValueError(f"message and memory text must be a str, got {type(content).__name__}: {content!r:.80}.")
    return content


def _role_and_content(turn: dict | Sequence) -> tuple[str, str]:
    if isinstance(turn, dict) and {"role", "content"} <= turn.keys():
        return turn["role"], turn["content"]
    if isinstance(turn, (tuple, list)) and len(turn) == 2:
        return tuple(turn)
    raise ValueError(f"a turn is a (role, content) pair or a dict with 'role' and 'content', got {turn!r:.80}.")


def _start_conversation(db: sqlite3.Connection, user_id: int, model_version: str, temporary: bool,
                        clock: int | None) -> int:
    """The insert of ``start_conversation``, inside the caller's transaction."""
    row = db.execute("SELECT improve_model FROM users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        raise _missing("user", user_id, "add_user")
    if clock is None:
        clock = db.execute("SELECT COALESCE(MAX(started_at), 0) + 1 FROM conversations").fetchone()[0]
    return db.execute("INSERT INTO conversations (user_id, model_version, temporary, improve_model, started_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (user_id, model_version, int(bool(temporary)), row["improve_model"], clock)).lastrowid


def _add_message(db: sqlite3.Connection, conversation_id: int, role: str, content: str) -> int:
    """The insert of ``add_message``, inside the caller's transaction: the next position."""
    if role not in ROLES:
        raise ValueError(f"a message's role is one of {ROLES}, got {role!r}.")
    _require(db, "conversation", conversation_id, "start_conversation")
    position = db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation_id = ?",
                          (conversation_id,)).fetchone()[0]
    return db.execute("INSERT INTO messages (conversation_id, position, role, content) VALUES (?, ?, ?, ?)",
                      (conversation_id, position, role, _text(content))).lastrowid
