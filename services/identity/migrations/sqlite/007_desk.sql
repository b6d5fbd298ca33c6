-- People an agent registers at a desk have no e-mail address and no phone: they sign in
-- with the one-time desk code on the card the agent printed (services/identity/desk.py).
-- Their current code, as a keyed hash, and when it expires; NULL once used, and for
-- everyone else.
ALTER TABLE persons ADD COLUMN desk_code_hash TEXT;
ALTER TABLE persons ADD COLUMN desk_code_expires_at TEXT;
CREATE UNIQUE INDEX persons_desk_code ON persons (desk_code_hash);
