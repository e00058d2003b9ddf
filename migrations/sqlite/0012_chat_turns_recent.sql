-- The chat history read (`ORDER BY created_at DESC, id DESC LIMIT n`) is
-- served in index order, so it stops after n rows.
DROP INDEX chat_turns_chat;
CREATE INDEX chat_turns_chat ON chat_turns(family_id, chat_id, created_at, id);
