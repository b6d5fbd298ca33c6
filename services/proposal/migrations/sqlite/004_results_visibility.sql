-- When a poll's results may be seen: after_close (as before this migration), embargoed
-- (until an organiser publishes them) or live; set beside the rules, frozen with them.
-- And when the tally signed its result (null until then, and on polls published before
-- this migration).
ALTER TABLE polls ADD COLUMN results_visibility TEXT NOT NULL DEFAULT 'after_close';
ALTER TABLE polls ADD COLUMN result_signed_at TEXT;
