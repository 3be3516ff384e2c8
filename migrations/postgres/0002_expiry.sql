-- Share expiry: a share may be given a lifetime at creation. After `expires_at` (epoch ms) every
-- route answers 410; the sweeper then deletes the object and sets `deleted_at` (the row stays as
-- a tombstone, so the id is never reused).
ALTER TABLE shares ADD COLUMN expires_at BIGINT;
CREATE INDEX shares_to_sweep ON shares (expires_at) WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
