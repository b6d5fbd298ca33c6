-- Counting by shard (ARCHITECTURE.md D7). Embedded, one shard and no stream: a
-- partial is written in the same transaction as the copy rows it counts. A ballot's
-- position is the offset of the counting-stream message that brought it (0 here).
ALTER TABLE ballots ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
CREATE TABLE checkpoints (
    stream   TEXT NOT NULL,
    shard    INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (stream, shard)
);
CREATE TABLE partials (
    stream  TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    poll_id TEXT NOT NULL,
    state   TEXT NOT NULL,
    PRIMARY KEY (stream, shard, poll_id)
);
CREATE INDEX partials_by_poll ON partials (poll_id);
-- Why the result is not signed (the counts disagree), as of the last check.
ALTER TABLE polls ADD COLUMN withheld TEXT;
