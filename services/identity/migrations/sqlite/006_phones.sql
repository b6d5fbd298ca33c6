-- People without an e-mail address sign in by SMS: a person has an e-mail address or a
-- phone number (E.164), each unique. SQLite cannot drop NOT NULL in place: the table is
-- rebuilt, its rows copied as they are.
CREATE TABLE persons_with_phones (
    person_id  TEXT PRIMARY KEY,
    email      TEXT UNIQUE,
    phone      TEXT UNIQUE,
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    district   TEXT,
    CHECK (email IS NOT NULL OR phone IS NOT NULL)
);
INSERT INTO persons_with_phones (person_id, email, role, created_at, district)
    SELECT person_id, email, role, created_at, district FROM persons;
DROP TABLE persons;
ALTER TABLE persons_with_phones RENAME TO persons;
-- sign_in_codes and limit_counters are keyed by the sign-in address: an e-mail address
-- or a phone number, which has no "@" (the two never meet). Unchanged.
