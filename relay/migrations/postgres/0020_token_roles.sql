-- Least privilege (issue 11): every API token has a role. Tokens stored
-- before roles existed could do everything, so they become admin and
-- existing single-token setups keep working.
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
-- Overlay tokens may be limited to some TAU event types: a JSON array of
-- names (`["channel-follow"]`); NULL means every type.
ALTER TABLE api_tokens ADD COLUMN event_types TEXT;
-- Names become unique (they are how people revoke). Older duplicates keep
-- the oldest token's name; the others get their id's first characters.
UPDATE api_tokens SET name = name || '-' || substr(id, 1, 8)
WHERE EXISTS (
    SELECT 1 FROM api_tokens older
    WHERE older.name = api_tokens.name
      AND (older.created_us < api_tokens.created_us
           OR (older.created_us = api_tokens.created_us AND older.id < api_tokens.id))
);
CREATE UNIQUE INDEX api_tokens_name ON api_tokens (name);
-- The hint was the token's first characters (all of a short seed); it is
-- now derived from the hash, which reveals nothing about the token.
UPDATE api_tokens SET hint = substr(token_hash, 1, 8);
