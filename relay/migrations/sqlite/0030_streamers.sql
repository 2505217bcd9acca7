-- Watched streamers (issue 13): other channels whose going live and
-- offline TAU follows (`stream.online` / `stream.offline` subscriptions with
-- their id as condition). Booleans are 0/1 integers: one portable decoding
-- for both backends.
CREATE TABLE streamers (
    id              TEXT    PRIMARY KEY,
    twitch_username TEXT    NOT NULL,
    twitch_id       TEXT    NOT NULL UNIQUE,
    streaming       INTEGER NOT NULL DEFAULT 0,
    disabled        INTEGER NOT NULL DEFAULT 0,
    -- `api` (added through REST) or `spec` (TAU_STREAMERS: the operator's
    -- TwitchChannel spec.streamers owns it).
    source          TEXT    NOT NULL,
    created_us      BIGINT  NOT NULL,
    updated_us      BIGINT  NOT NULL
);
CREATE INDEX streamers_username ON streamers (twitch_username);

-- One row per broadcast of a watched streamer (Twitch's stream id is
-- unique); removed with its streamer.
CREATE TABLE streams (
    id            TEXT    PRIMARY KEY,
    stream_id     TEXT    NOT NULL UNIQUE,
    streamer      TEXT    NOT NULL,
    user_login    TEXT    NOT NULL,
    user_name     TEXT    NOT NULL,
    game_id       TEXT    NOT NULL,
    game_name     TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    viewer_count  BIGINT  NOT NULL,
    started_us    BIGINT  NOT NULL,
    ended_us      BIGINT,
    language      TEXT    NOT NULL,
    thumbnail_url TEXT    NOT NULL,
    -- A JSON array of strings, read and written only by the relay.
    tags          TEXT    NOT NULL,
    is_mature     INTEGER NOT NULL
);
CREATE INDEX streams_streamer_started ON streams (streamer, started_us);
