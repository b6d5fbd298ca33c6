-- The public record, stored at publication so no request rebuilds it (issue 8): the
-- entries in chunks of 256 (canonical JSON, a line each: the leaves' bytes), the Merkle
-- tree as tiles of 256 hashes per level (urne/record/tiles.py), each tracker's position,
-- and the head (size, root), written last.
CREATE TABLE record_chunks (
    poll_id TEXT NOT NULL,
    chunk   INTEGER NOT NULL,
    lines   BLOB NOT NULL,
    PRIMARY KEY (poll_id, chunk)
);
CREATE TABLE record_tiles (
    poll_id TEXT NOT NULL,
    level   INTEGER NOT NULL,
    tile    INTEGER NOT NULL,
    hashes  BLOB NOT NULL,
    PRIMARY KEY (poll_id, level, tile)
);
CREATE TABLE record_trackers (
    poll_id  TEXT NOT NULL,
    tracker  TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (poll_id, tracker)
) WITHOUT ROWID;
CREATE TABLE record_heads (
    poll_id TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    root    TEXT NOT NULL
);
