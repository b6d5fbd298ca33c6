-- vote owns the ballot store. voter_key is the poll-scoped pseudonym; no personal data.
CREATE TABLE polls (
    poll_id    TEXT PRIMARY KEY,
    rules      TEXT,
    rules_hash TEXT,
    status     TEXT NOT NULL
);
-- Immutable rows; a revote is a new row with the next sequence.
-- The primary key is what makes "one counted ballot per voter" race-free.
CREATE TABLE ballots (
    poll_id     TEXT NOT NULL,
    voter_key   TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    ballot_id   TEXT NOT NULL UNIQUE,
    tracker     TEXT NOT NULL,
    choice      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (poll_id, voter_key, sequence)
);
