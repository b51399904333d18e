-- The inbox of the whole tenant is read by merging the inbox of each mode
-- (`conversations_mode_updated`, one query per mode in one compound statement, see
-- `page_sql` in src/list.rs), so the tenant's own newest-first index goes: every posted
-- message moved its entry, about one page written per message at 100k conversations
-- (issue 25: 18-22% of the pages a post writes).
DROP INDEX conversations_updated;
