-- Objects of deleted and expired shares are removed again once their last upload URL has
-- expired: a URL issued before the delete could still put the object back until then (S3 checks
-- only the URL's own signature and expiry). `purged_at` (epoch ms) marks a tombstone whose
-- object the sweep has removed for good.
ALTER TABLE shares ADD COLUMN purged_at INTEGER;
CREATE INDEX shares_to_purge ON shares (upload_until) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
