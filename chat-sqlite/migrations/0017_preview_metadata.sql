-- Schema version 17: the inbox preview of a desk notice ("Assigned to Dana") keeps the
-- notice's metadata (`notice` and its `notice.*` parameters, as JSON), so the console writes
-- it in its reader's language as it does the notice in the conversation. NULL when the last
-- message is not a notice. Existing rows stay NULL: their previews show the stored English
-- body, as before, until the conversation's next message.
ALTER TABLE conversations ADD COLUMN preview_metadata TEXT;
