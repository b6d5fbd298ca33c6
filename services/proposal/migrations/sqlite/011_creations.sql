-- Creations a client may retry (an Idempotency-Key on POST /v1/consultations, on a
-- consultation's proposals or polls): the id derived from the actor and the key, claimed
-- once, with the digest of the first request and its time. No person id: the id is a
-- hash of it with a key only the client had.
CREATE TABLE IF NOT EXISTS creations (
    creation_id    TEXT PRIMARY KEY,
    request_digest TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
