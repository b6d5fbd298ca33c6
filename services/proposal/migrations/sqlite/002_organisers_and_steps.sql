-- A consultation belongs to its organisers (person ids, JSON array in the order they
-- were added, the creator first), is a draft until published, and has steps (JSON,
-- in UTC) and a time zone to show them in (an IANA name).
-- Consultations from before this migration were public: they stay published, since
-- their creation, with their creator as their one organiser.
ALTER TABLE consultations ADD COLUMN status TEXT NOT NULL DEFAULT 'published';
ALTER TABLE consultations ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE consultations ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
ALTER TABLE consultations ADD COLUMN published_at TEXT;
ALTER TABLE consultations ADD COLUMN organisers TEXT NOT NULL DEFAULT '[]';
UPDATE consultations SET published_at = created_at, organisers = json_array(created_by);
