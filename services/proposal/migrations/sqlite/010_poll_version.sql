-- A poll's version, one more at each change: the compare-and-set of every change is on
-- its status and its version, so two changes read from the same poll (an edit and the
-- opening, two extensions) cannot both be stored.
ALTER TABLE polls ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
