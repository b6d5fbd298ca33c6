-- Proposals as cities run them: a category, a district and an estimated cost (whole
-- currency units); a status (submitted, published, rejected with its public reason,
-- selected, implemented) and when it last changed; moderation (hidden, why, by whom,
-- since when). Proposals from before were added by organisers: published, shown.
ALTER TABLE proposals ADD COLUMN category TEXT;
ALTER TABLE proposals ADD COLUMN district TEXT;
ALTER TABLE proposals ADD COLUMN estimated_cost INTEGER;
ALTER TABLE proposals ADD COLUMN status TEXT NOT NULL DEFAULT 'published';
ALTER TABLE proposals ADD COLUMN rejection_reason TEXT;
ALTER TABLE proposals ADD COLUMN status_changed_at TEXT;
ALTER TABLE proposals ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
ALTER TABLE proposals ADD COLUMN hidden_reason TEXT;
ALTER TABLE proposals ADD COLUMN hidden_by TEXT;
ALTER TABLE proposals ADD COLUMN hidden_at TEXT;
-- A participant's submission takes the next slot of their quota in the consultation
-- (0, 1, ...; NULL: added by an organiser, not counted). The store counts and inserts in
-- one transaction; the unique index makes a second proposal in one slot impossible anyway.
ALTER TABLE proposals ADD COLUMN quota_slot INTEGER;
CREATE UNIQUE INDEX proposal_quota ON proposals(consultation_id, author_id, quota_slot);
-- The listing's order, for keyset pages: (created_at, proposal_id) within a consultation.
DROP INDEX proposals_by_consultation;
CREATE INDEX proposals_by_consultation ON proposals(consultation_id, created_at, proposal_id);
-- A person reports a proposal once; its moderators read a consultation's reports.
CREATE TABLE proposal_reports (
    proposal_id     TEXT NOT NULL REFERENCES proposals(proposal_id),
    reporter_id     TEXT NOT NULL,
    consultation_id TEXT NOT NULL,
    reason          TEXT NOT NULL,
    reported_at     TEXT NOT NULL,
    PRIMARY KEY (proposal_id, reporter_id)
);
CREATE INDEX proposal_reports_by_consultation ON proposal_reports(consultation_id, reported_at);
