-- The database behind the deployed chat model of notebook 09 ("does ChatGPT learn from you?").
--
-- The model's weights do not change while people chat with it. What changes is this
-- database: every conversation, every message and every thumbs up / down is a row.
-- The next version of the model is trained from the rows that the users' settings allow
-- (utils/feedback.py: TRAINING_QUERY). Memories are different: saved text that the app
-- puts in front of a user's next chats; they change what the model *reads*, not what it *is*.
--
--   users ──< conversations ──< messages ──< feedback (at most one rating per message)
--     └────< memories        (no link to conversations: deleting a chat keeps its memories)
--
-- Foreign keys are checked only on a connection that asks for them, every time it opens:

PRAGMA foreign_keys = ON;

-- Every id is AUTOINCREMENT: never handed out twice. A plain INTEGER PRIMARY KEY gives the
-- largest id again once its row is deleted, so a deleted chat's id (kept in a list of
-- training conversations, say) could come back naming someone else's chat.

-- One person using the app.
CREATE TABLE IF NOT EXISTS users (
    user_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    -- The "Improve the model for everyone" switch: 1 = my chats may be used for training.
    improve_model INTEGER NOT NULL DEFAULT 1 CHECK (improve_model IN (0, 1)),
    -- The simulation's label for how this user rates replies ('honest', 'agreeable',
    -- 'malicious', ...). A real app knows no such thing: it is there so the notebook can
    -- ask what each kind of user did to the next model.
    kind          TEXT    NOT NULL DEFAULT 'honest'
);

-- One chat: a user talking to one version of the model.
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    model_version   TEXT    NOT NULL,                   -- which model answered, e.g. 'v1'
    -- A temporary chat is never used for training, whatever the settings.
    temporary       INTEGER NOT NULL DEFAULT 0 CHECK (temporary IN (0, 1)),
    -- The user's improve_model setting when the chat *started*: switching it off later
    -- applies to the chats that come after, not to this one.
    improve_model   INTEGER NOT NULL CHECK (improve_model IN (0, 1)),
    -- A logical clock (the simulation's step), not wall time, so every run is the same.
    started_at      INTEGER NOT NULL
);

-- The turns of a conversation, in order.
CREATE TABLE IF NOT EXISTS messages (
    message_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 0),  -- 0, 1, 2, ... within its conversation
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    UNIQUE (conversation_id, position)  -- also the index that finds a conversation's messages
);

-- A thumbs up (+1) or down (-1) on one of the assistant's replies. Rating again replaces it.
CREATE TABLE IF NOT EXISTS feedback (
    message_id INTEGER PRIMARY KEY REFERENCES messages (message_id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating IN (-1, 1))
);

-- Only the assistant's messages can be rated. A CHECK cannot look at another table;
-- a trigger can. (A missing message falls through to the foreign key's own error.)
CREATE TRIGGER IF NOT EXISTS feedback_is_for_assistant_messages
BEFORE INSERT ON feedback
WHEN (SELECT role FROM messages WHERE message_id = NEW.message_id) <> 'assistant'
BEGIN
    SELECT RAISE(ABORT, 'feedback is for assistant messages');
END;

CREATE TRIGGER IF NOT EXISTS feedback_moves_only_to_assistant_messages
BEFORE UPDATE OF message_id ON feedback
WHEN (SELECT role FROM messages WHERE message_id = NEW.message_id) <> 'assistant'
BEGIN
    SELECT RAISE(ABORT, 'feedback is for assistant messages');
END;

-- Saved text about a user that the app puts before their chats (the <|memory|> block).
-- Visible, editable, deletable by the user.
CREATE TABLE IF NOT EXISTS memories (
    memory_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    content   TEXT    NOT NULL,
    -- 'user': the user asked to remember it; 'summary': the background summary of past chats wrote it.
    source    TEXT    NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'summary'))
);

-- Indexes on the foreign keys: a user's chats and memories are found (and cascade-deleted)
-- without reading every row. messages(conversation_id) is covered by its UNIQUE constraint,
-- feedback(message_id) by its primary key.
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (user_id);
CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id);
