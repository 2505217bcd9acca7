-- Chat bots (issue 13): Twitch accounts other than the broadcaster that
-- TAU sends chat as. `token` is the bot's OAuth token pair sealed with the
-- relay's secret key, exactly as the broadcaster's is (never plain text);
-- `scopes` (space-separated) and `expires_us` are copies shown to
-- operators. `status`: `ready`, `token_invalid` or `scope_missing`, with
-- `reason` in words.
CREATE TABLE chat_bots (
    id          TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL UNIQUE,
    user_login  TEXT    NOT NULL,
    user_name   TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    expires_us  BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    reason      TEXT,
    created_us  BIGINT  NOT NULL,
    updated_us  BIGINT  NOT NULL
);
CREATE INDEX chat_bots_login ON chat_bots (user_login);

-- The channels a bot is in; removed with their bot. `status`: `joined`,
-- `pending` or `failed` (Twitch refused the bot there), `reason` in words.
CREATE TABLE chat_bot_channels (
    id            TEXT    PRIMARY KEY,
    bot_id        TEXT    NOT NULL,
    channel_login TEXT    NOT NULL,
    channel_id    TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    reason        TEXT,
    created_us    BIGINT  NOT NULL,
    UNIQUE (bot_id, channel_id)
);
