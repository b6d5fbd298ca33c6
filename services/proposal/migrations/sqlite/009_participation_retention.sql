-- When a consultation's participation was forgotten (docs/privacy.md): its proposals'
-- authors and its reports, URNE_PARTICIPATION_DAYS after its last step or poll ended.
ALTER TABLE consultations ADD COLUMN participation_forgotten_at TEXT;
