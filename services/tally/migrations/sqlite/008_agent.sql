-- The agent who cast a ballot at a desk or entered it from paper (the vote service's
-- word, from the voting token): the result reconciles the log's ballots by agent.
-- Null online, and on the ballots from before this migration.
ALTER TABLE ballots ADD COLUMN agent TEXT;
