-- What organisers and admins did here (consultations, proposals, polls): appended,
-- never changed (urne/storage/action_log.py).
CREATE TABLE IF NOT EXISTS action_log (
    month TEXT NOT NULL,
    at TEXT NOT NULL,
    id TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (month, at, id)
);
