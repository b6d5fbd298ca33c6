-- People registered at a desk have neither an e-mail address nor a phone: the CHECK of
-- 006 (one of the two) goes, by a rebuild (SQLite cannot drop a constraint in place),
-- its rows and the desk code index (007) copied as they are. desk_code_used: whether
-- the person has signed in with a desk card (a new card after that is an admin's to
-- give, services/identity/desk.py); a flag, never a time.
CREATE TABLE persons_at_desks (
    person_id            TEXT PRIMARY KEY,
    email                TEXT UNIQUE,
    phone                TEXT UNIQUE,
    role                 TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    district             TEXT,
    desk_code_hash       TEXT,
    desk_code_expires_at TEXT,
    desk_code_used       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO persons_at_desks (person_id, email, phone, role, created_at, district,
                              desk_code_hash, desk_code_expires_at)
    SELECT person_id, email, phone, role, created_at, district, desk_code_hash,
           desk_code_expires_at FROM persons;
DROP TABLE persons;
ALTER TABLE persons_at_desks RENAME TO persons;
CREATE UNIQUE INDEX persons_desk_code ON persons (desk_code_hash);
