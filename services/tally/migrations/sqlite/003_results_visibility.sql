-- When a poll's results may be seen (poll.opened: after_close, embargoed or live; null
-- on rows from before this migration: after_close), and when an organiser released an
-- embargoed result (poll.result_released). Each event writes its own columns only.
ALTER TABLE polls ADD COLUMN results_visibility TEXT;
ALTER TABLE polls ADD COLUMN released_at TEXT;
