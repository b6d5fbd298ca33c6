-- The census of each consultation (services/identity/census.py): keyed hashes of who is
-- on it, never names, birth dates or addresses; the district and eligibility in clear.
CREATE TABLE census_entries (
    consultation_id TEXT NOT NULL,
    entry_key       TEXT NOT NULL,   -- HMAC of the normalised names and birth date
    district        TEXT,
    eligible        INTEGER NOT NULL,
    claimed_by      TEXT,            -- the person id of the one account that claimed it
    PRIMARY KEY (consultation_id, entry_key)
);
CREATE TABLE census_emails (
    consultation_id TEXT NOT NULL,
    email_key       TEXT NOT NULL,   -- HMAC of the normalised e-mail address
    entry_key       TEXT NOT NULL,
    PRIMARY KEY (consultation_id, email_key)
);
-- The one entry each account holds in a consultation's census.
CREATE TABLE census_claims (
    consultation_id TEXT NOT NULL,
    person_id       TEXT NOT NULL,
    entry_key       TEXT NOT NULL,
    PRIMARY KEY (consultation_id, person_id)
);
-- Who may get a voting token for a poll: its consultation and electorate (poll.opened).
ALTER TABLE poll_status ADD COLUMN consultation_id TEXT;
ALTER TABLE poll_status ADD COLUMN electorate TEXT;
