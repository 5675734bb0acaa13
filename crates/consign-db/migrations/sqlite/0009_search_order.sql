-- Full-text matches are read newest first straight from the index: each
-- entry's rowid is now its message's rowid, so a search walks the index in
-- rowid order, joins each hit by rowid and stops at the page's end instead
-- of collecting every message that has a common word.
DROP TRIGGER messages_fts_insert;
DELETE FROM messages_fts;
INSERT INTO messages_fts (rowid, body, message_id, organization_id)
    SELECT rowid, body, id, organization_id FROM messages;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body, message_id, organization_id)
        VALUES (new.rowid, new.body, new.id, new.organization_id);
END;
