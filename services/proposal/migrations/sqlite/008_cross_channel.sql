-- Whether a ballot cast in person (at a desk) is final (in_person_final) or replaced by
-- a later one like any (latest_wins, as before this migration); set beside the rules,
-- frozen with them.
ALTER TABLE polls ADD COLUMN cross_channel TEXT NOT NULL DEFAULT 'latest_wins';
