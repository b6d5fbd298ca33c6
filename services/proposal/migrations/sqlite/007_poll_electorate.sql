-- Who may get a voting token for a poll: open (anyone signed in, as before this
-- migration) or census (those holding a claimed, eligible entry of the consultation's
-- census); set beside the rules, frozen with them.
ALTER TABLE polls ADD COLUMN electorate TEXT NOT NULL DEFAULT 'open';
