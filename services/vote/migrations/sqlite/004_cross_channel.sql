-- Whether a ballot cast in person (at a desk) is final: in_person_final refuses a later
-- online ballot of that voter; latest_wins (as before this migration) takes it.
ALTER TABLE ballot_boxes ADD COLUMN cross_channel TEXT NOT NULL DEFAULT 'latest_wins';
