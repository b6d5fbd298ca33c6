-- When the poll closed (poll.closed, from the proposal service): the tally signs only a
-- poll both closed by its organiser's service and sealed by the vote service (issue 10),
-- so neither service's messages alone can make it sign.
ALTER TABLE polls ADD COLUMN closed_at TEXT;
