-- When the poll is due to close (null: by hand only): ballots received after it are
-- refused, even before the close marker comes. Only ever moved later.
ALTER TABLE ballot_boxes ADD COLUMN closes_at TEXT;
