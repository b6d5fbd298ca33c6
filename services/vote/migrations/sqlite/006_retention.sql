-- The ballots' retention (docs/privacy.md): when the tally signed the poll's result
-- (result.published), and when the vote service deleted its ballots, URNE_VOTE_BALLOT_DAYS
-- after that. The box and its seal stay: they hold no voter key.
ALTER TABLE ballot_boxes ADD COLUMN result_signed_at TEXT;
ALTER TABLE ballot_boxes ADD COLUMN ballots_purged_at TEXT;
