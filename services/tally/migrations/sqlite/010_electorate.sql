-- Who may vote in the poll (poll.opened; NULL, a sheet from before: open to all) and, for
-- a census poll, how many eligible people its electorate held at the close
-- (electorate.counted.v1, from identity): the tally signs a census poll only with it.
ALTER TABLE polls ADD COLUMN electorate TEXT;
ALTER TABLE polls ADD COLUMN eligible INTEGER;
