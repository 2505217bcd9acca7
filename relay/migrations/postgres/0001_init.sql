-- Events: one row per Twitch message, deduplicated by event_id (Twitch's
-- message id). seq orders events for cursors and client resume; inserts
-- hold an advisory lock so seq order is commit order across replicas.
CREATE TABLE events (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    event_source    TEXT    NOT NULL,
    broadcaster_id  TEXT,
    event_data      TEXT    NOT NULL,
    created_us      BIGINT  NOT NULL,
    origin          TEXT    NOT NULL,
    user_id         TEXT,
    user_login      TEXT,
    user_name       TEXT,
    reward_id       TEXT,
    raid_from_id    TEXT,
    raid_from_login TEXT,
    raid_to_id      TEXT,
    raid_to_login   TEXT
);
CREATE INDEX events_type_seq ON events (event_type, seq);
CREATE INDEX events_created ON events (created_us);
CREATE INDEX events_user_id ON events (user_id);
CREATE INDEX events_user_login ON events (user_login);

CREATE TABLE api_tokens (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL UNIQUE,
    hint         TEXT   NOT NULL,
    created_us   BIGINT NOT NULL,
    last_used_us BIGINT
);

CREATE TABLE revocations (
    message_id        TEXT   PRIMARY KEY,
    subscription_id   TEXT   NOT NULL,
    subscription_type TEXT   NOT NULL,
    version           TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    transport         TEXT   NOT NULL,
    received_us       BIGINT NOT NULL
);

CREATE TABLE settings (
    name       TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_us BIGINT NOT NULL
);

-- Leases: which replica holds a singleton job (e.g. the EventSub socket).
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    fencing    BIGINT NOT NULL,
    expires_us BIGINT NOT NULL
);
