-- How many eligible people a census poll's electorate held at its close, counted once
-- when it closed (electorate.counted.v1, for the signed reconciliation) and kept, so
-- that every sending of the event carries the same number.
ALTER TABLE poll_status ADD COLUMN eligible INTEGER;
ALTER TABLE poll_status ADD COLUMN eligible_counted_at TEXT;
