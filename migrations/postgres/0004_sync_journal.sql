-- Sync batches are journaled, not merged into the document one by one: a batch costs an insert
-- here whatever the session's size. They are folded into the document (and deleted) when the
-- journal has grown by half the document, when the share has been quiet a while, and before a
-- re-upload. Readers apply what is left on top of the document.
--
-- `journal_bytes` bounds what the journal adds to the document; `doc_bytes` is the document's
-- size as this server last wrote it, -1 when unknown (a client may have uploaded since).
ALTER TABLE shares ADD COLUMN journal_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN doc_bytes BIGINT NOT NULL DEFAULT -1;
CREATE TABLE sync_journal (
    seq       BIGSERIAL PRIMARY KEY,
    share_id  TEXT NOT NULL REFERENCES shares (id),
    at        BIGINT NOT NULL,             -- epoch milliseconds the batch was acknowledged
    redacted  BOOLEAN NOT NULL,            -- the server redacted something in it
    weight    BIGINT NOT NULL,             -- what it can add to the document at most
    items     BYTEA NOT NULL               -- the batch's items, a JSON array of {type, data}
);
CREATE INDEX sync_journal_share ON sync_journal (share_id, seq);
