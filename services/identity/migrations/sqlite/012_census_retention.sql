-- The census's retention (docs/privacy.md): a consultation's census is deleted
-- URNE_CENSUS_DAYS after the close of its last census poll, once none is open; noted
-- here, and the note dropped when the census is uploaded again.
CREATE TABLE census_purges (
    consultation_id TEXT PRIMARY KEY,
    purged_at       TEXT NOT NULL
);
