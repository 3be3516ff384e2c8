-- Shares: one row per share id, kept after deletion as a tombstone so the id is never reused.
CREATE TABLE shares (
    id            TEXT PRIMARY KEY,
    session_id    TEXT NOT NULL,
    secret_hash   BLOB NOT NULL,        -- SHA-256 of the secret; the secret itself is never stored
    created_at    INTEGER NOT NULL,       -- epoch milliseconds
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,                -- set when the owner deleted the share
    upload_until  INTEGER NOT NULL DEFAULT 0  -- expiry of the newest upload URL issued
);

-- Share creations per client address (a keyed hash, never the address) per hour window.
CREATE TABLE create_counts (
    client_hash   BLOB NOT NULL,
    window_start  INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    PRIMARY KEY (client_hash, window_start)
);

-- Nonces of local upload URLs already used, so a signed URL works once.
CREATE TABLE used_upload_nonces (
    nonce       TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

-- Server-wide keys shared by every instance (e.g. the key of client-address hashes).
CREATE TABLE server_keys (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);
