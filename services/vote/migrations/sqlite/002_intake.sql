-- The batched intake (pre-release: the 001 tables held no data worth keeping).
-- A voter's ballots are found by (poll, voter); the edge names each ballot (ballot_id),
-- so a ballot written twice is the same row. idempotency_key and request_digest answer
-- a client's retry with its first receipt.
DROP TABLE ballots;
ALTER TABLE polls RENAME TO ballot_boxes;
CREATE TABLE ballots (
    poll_id         TEXT NOT NULL,
    voter_key       TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    ballot_id       TEXT NOT NULL UNIQUE,
    tracker         TEXT NOT NULL,
    choice          TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    idempotency_key TEXT,
    request_digest  TEXT NOT NULL,
    PRIMARY KEY (poll_id, voter_key, sequence)
);
-- The shards that have passed a poll's close marker (one shard when embedded), and
-- the seal taken once all have.
CREATE TABLE closed_shards (
    poll_id TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    PRIMARY KEY (poll_id, shard)
);
CREATE TABLE seals (
    poll_id          TEXT PRIMARY KEY,
    ballots_recorded INTEGER NOT NULL,
    ballots_digest   TEXT NOT NULL,
    sealed_at        TEXT NOT NULL
);
