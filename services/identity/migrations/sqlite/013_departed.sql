-- People who deleted their account (DELETE /v1/me): their e-mail address or phone number
-- is gone, a keyed hash of it stays with their person id, so that signing in again with
-- it finds the same id, and the same voter key in every poll: no second ballot.
CREATE TABLE departed (
    address_key TEXT PRIMARY KEY,   -- HMAC (URNE_CODE_SECRET) of the normalised address
    person_id   TEXT NOT NULL,
    departed_at TEXT NOT NULL
);
