-- Signed webhook forwarding (issue 14, part 2): targets that receive each
-- stored event POSTed with Twitch's headers and HMAC signature.
-- `secret` is the target's signing secret sealed with the relay's secret
-- key (never plain text). `event_types` is a JSON array of EventSub type
-- names (empty: every type); `conditions` a JSON object of fields every
-- forwarded event must carry with these values. `cursor_seq` is the last
-- event position handled (delivered or skipped as not matching): delivery
-- resumes there after a restart. `paused_reason`: NULL, `manual` or
-- `failing`; `failing_since_us` is when the current run of failures began.
-- `pending` = 1 while a target added through the Helix-compatible API
-- waits for its asynchronous challenge (nothing is delivered to it yet).
CREATE TABLE webhook_targets (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    url              TEXT    NOT NULL,
    secret           TEXT    NOT NULL,
    event_types      TEXT    NOT NULL,
    conditions       TEXT    NOT NULL,
    cursor_seq       BIGINT  NOT NULL,
    paused_reason    TEXT,
    pending          BIGINT  NOT NULL DEFAULT 0,
    delivered        BIGINT  NOT NULL DEFAULT 0,
    failed_attempts  BIGINT  NOT NULL DEFAULT 0,
    last_error       TEXT,
    failing_since_us BIGINT,
    next_attempt_us  BIGINT,
    last_success_us  BIGINT,
    last_attempt_us  BIGINT,
    created_us       BIGINT  NOT NULL,
    updated_us       BIGINT  NOT NULL
);
