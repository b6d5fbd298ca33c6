-- tally owns its copy of the counted-ballot stream, per-poll seal state and results.
CREATE TABLE polls (
    poll_id      TEXT PRIMARY KEY,
    rules        TEXT,
    rules_hash   TEXT,
    sealed_count INTEGER
);
CREATE TABLE ballots (
    poll_id     TEXT NOT NULL,
    voter_key   TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    ballot_id   TEXT NOT NULL,
    tracker     TEXT NOT NULL,
    choice      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (poll_id, voter_key, sequence)
);
CREATE TABLE results (
    poll_id TEXT PRIMARY KEY,
    signed  TEXT NOT NULL
);
