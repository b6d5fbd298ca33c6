-- The record grows during the vote as a log (urne.record.v2): its state (size, root, the
-- next entry's parent, the sizes of its intervals, and the rowid of the copy it has
-- logged up to), and the signed tree head of each interval. Its entries, tree and
-- trackers go to the record tables, written ahead of the state that covers them.
CREATE TABLE log_heads (
    poll_id   TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    root      TEXT NOT NULL,
    parent    TEXT NOT NULL,
    intervals TEXT NOT NULL,
    cursor    TEXT NOT NULL
);
CREATE TABLE tree_heads (
    poll_id TEXT NOT NULL,
    size    INTEGER NOT NULL,
    signed  TEXT NOT NULL,
    PRIMARY KEY (poll_id, size)
);
