-- The vote service's digest of the sealed ballot set (ballot_box.sealed.v1).
ALTER TABLE polls ADD COLUMN sealed_digest TEXT;
