-- A poll's schedule: when it opens and closes by itself (null: by hand only), the close
-- time including its amendments, and the amendments themselves (a JSON list, oldest
-- first). The embedded bus's outbox commits poll events with these writes, so no other
-- outbox is kept here.
ALTER TABLE polls ADD COLUMN opens_at TEXT;
ALTER TABLE polls ADD COLUMN closes_at TEXT;
ALTER TABLE polls ADD COLUMN amendments TEXT NOT NULL DEFAULT '[]';
CREATE INDEX IF NOT EXISTS polls_on_schedule ON polls (status)
    WHERE opens_at IS NOT NULL OR closes_at IS NOT NULL;
