-- The chat history read (`ORDER BY created_at DESC, id DESC LIMIT n`) is
-- served in index order, so it stops after n rows whatever the planner
-- estimates. With (family_id, chat_id, created_at) only, a table without
-- statistics yet (a new instance) was read whole under the row-level policy
-- before sorting: ~260 ms a question at 6,000 turns under load.
DROP INDEX chat_turns_chat;
CREATE INDEX chat_turns_chat ON chat_turns(family_id, chat_id, created_at, id);
