-- Tombstones: the position of each deleted event (REST delete, retention),
-- so a client resuming with `since` = a deleted event's id continues from
-- the next stored position instead of being refused. Kept for one
-- retention period after the deletion.
CREATE TABLE deleted_events (
    id         TEXT   PRIMARY KEY,
    seq        BIGINT NOT NULL,
    deleted_us BIGINT NOT NULL
);
CREATE INDEX deleted_events_deleted ON deleted_events (deleted_us);
