-- The agent who cast a ballot at a desk or entered it from paper, as the voting token
-- names them (urne.crypto.tokens.agent_key): for the result's reconciliation by agent.
-- Null online, and on the ballots from before this migration.
ALTER TABLE ballots ADD COLUMN agent TEXT;
