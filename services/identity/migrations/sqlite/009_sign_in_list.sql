-- A poll's sign-in list (services/identity/sign_in_list.py): who has voted, by voter key
-- (the pseudonym identity derives), one row per voter and channel, and no time. WITHOUT
-- ROWID: rows are kept in key order, so not even their order says when they came.
CREATE TABLE sign_in_list (
    poll_id   TEXT NOT NULL,
    voter_key TEXT NOT NULL,
    channel   TEXT NOT NULL,
    district  TEXT,            -- the voting token's
    PRIMARY KEY (poll_id, voter_key, channel)
) WITHOUT ROWID;
