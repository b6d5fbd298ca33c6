CREATE TABLE consultations (
    consultation_id TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE TABLE proposals (
    proposal_id     TEXT PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultations(consultation_id),
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    author_id       TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX proposals_by_consultation ON proposals(consultation_id, created_at);
-- rules is the JSON of the poll's rules; frozen (with rules_hash) once status = open.
CREATE TABLE polls (
    poll_id         TEXT PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultations(consultation_id),
    proposal_id     TEXT,
    rules           TEXT NOT NULL,
    status          TEXT NOT NULL,
    rules_hash      TEXT,
    opened_at       TEXT,
    closed_at       TEXT,
    published_at    TEXT
);
CREATE INDEX polls_by_consultation ON polls(consultation_id);
