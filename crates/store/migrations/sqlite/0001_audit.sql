-- Audit chain, checkpoints and token revocations (DESIGN.md §8, §9).
-- The same logical schema as migrations/postgres/0001_audit.sql; keep them in step.

-- Append-only: the store API offers no UPDATE or DELETE on this table.
CREATE TABLE audit_events (
    node      TEXT    NOT NULL,
    seq       BIGINT  NOT NULL,
    ts_ms     BIGINT  NOT NULL,
    kind      TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    PRIMARY KEY (node, seq)
);

-- Export walks events in (ts_ms, node, seq) order with keyset pagination.
CREATE INDEX audit_events_by_time ON audit_events (ts_ms, node, seq);

-- A checkpoint is keyed by the hash it signs as well as its position, so that a chain
-- rewritten after truncation cannot overwrite the evidence of the original checkpoint.
CREATE TABLE audit_checkpoints (
    node       TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    ts_ms      BIGINT NOT NULL,
    hash       TEXT   NOT NULL,
    public_key TEXT   NOT NULL,
    signature  TEXT   NOT NULL,
    PRIMARY KEY (node, seq, hash)
);

CREATE TABLE revocations (
    kind       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    PRIMARY KEY (kind, value)
);
