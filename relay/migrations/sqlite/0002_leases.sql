-- Leases: which replica holds a singleton job (e.g. the EventSub socket).
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    fencing    BIGINT NOT NULL,
    expires_us BIGINT NOT NULL
);
