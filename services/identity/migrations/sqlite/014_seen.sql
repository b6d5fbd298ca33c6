-- The month of each person's last sign-in (YYYY-MM: nothing finer, so no time can be
-- matched with a ballot's), for the retention of accounts no one uses: identity's purge
-- deletes an account not signed in for URNE_ACCOUNT_DAYS. People registered before this
-- migration count from the month they registered in.
ALTER TABLE persons ADD COLUMN seen_month TEXT;
