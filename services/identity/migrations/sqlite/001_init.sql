-- identity owns persons (the only personal data in urne), sign-in codes and
-- the open/closed state of polls it issues voting tokens for.
CREATE TABLE persons (
    person_id  TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE login_codes (
    email             TEXT PRIMARY KEY,
    code_hash         TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    attempts_left     INTEGER NOT NULL,
    window_started_at TEXT NOT NULL,
    sent_in_window    INTEGER NOT NULL
);
CREATE TABLE poll_status (
    poll_id TEXT PRIMARY KEY,
    status  TEXT NOT NULL
);
