-- Sign-in codes are stored under a keyed hash of their address (domain.codes_key), no
-- longer under the address itself: the table does not tell whose sign-in is under way.
-- The rows kept under addresses go (a code in flight is asked for again).
ALTER TABLE sign_in_codes RENAME COLUMN email TO address_key;
DELETE FROM sign_in_codes;
