-- Sign-in codes, several pending per address (a new code no longer voids the one being
-- typed), and the counters of the abuse limits (urne/services/identity/limits.py).
-- Codes live ten minutes: the old table's are dropped, not carried over (whoever was
-- signing in during the upgrade asks for a new code).
DROP TABLE login_codes;
CREATE TABLE sign_in_codes (
    email         TEXT PRIMARY KEY,
    pending       TEXT NOT NULL,     -- JSON: [{"hash", "expires_at"}], oldest first
    attempts_left INTEGER NOT NULL,
    version       INTEGER NOT NULL   -- writes are conditional on it
);
-- Keys are keyed hashes: no address, no client in clear.
CREATE TABLE limit_counters (
    key               TEXT PRIMARY KEY,
    window_started_at TEXT NOT NULL,
    count             INTEGER NOT NULL,
    version           INTEGER NOT NULL
);
