-- The district a person declared (NULL until they do). Their word until the
-- electorate issue verifies it against a census; it goes into their voting tokens.
ALTER TABLE persons ADD COLUMN district TEXT;
