-- The polls whose copy of the ballots was deleted once its retention ran out after the
-- result was signed (the result and the stored record are kept: they are the proof).
CREATE TABLE purged_copies (
    poll_id   TEXT PRIMARY KEY,
    purged_at TEXT NOT NULL
);
