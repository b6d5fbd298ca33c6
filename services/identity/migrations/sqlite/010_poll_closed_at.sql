-- When each poll closed (poll.closed), so that its sign-in list is deleted a while after
-- (URNE_SIGN_IN_LIST_DAYS), and whether that was done. Polls closed before this migration
-- have no time: their lists stay until the operator deletes them.
ALTER TABLE poll_status ADD COLUMN closed_at TEXT;
ALTER TABLE poll_status ADD COLUMN sign_in_list_purged INTEGER NOT NULL DEFAULT 0;
