"""VoteStore on Cassandra (distributed profile)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from cassandra.cluster import Session

from urne.counting.rules import rules_adapter
from urne.services.vote.domain import BALLOT_BUCKETS, Ballot, BallotBox, bucket
from urne.storage.cassandra import guarded, ping, scan_buckets


class CassandraVoteStore:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        ks = keyspace
        p = session.prepare
        self._save_poll = p(f"INSERT INTO {ks}.polls (poll_id, rules, rules_hash, status) "
                            "VALUES (?, ?, ?, ?)")
        self._poll = p(f"SELECT * FROM {ks}.polls WHERE poll_id = ?")
        self._latest = p(f"SELECT sequence FROM {ks}.ballots WHERE poll_id = ? AND bucket = ? "
                         "AND voter_key = ? LIMIT 1")
        # The lightweight transaction is what keeps one ballot per (voter, sequence)
        # across vote processes: of two racing casts, one gets applied=False and retries.
        self._insert = p(
            f"INSERT INTO {ks}.ballots (poll_id, bucket, voter_key, sequence, ballot_id, tracker, "
            "choice, channel, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS")
        self._ids = p(f"SELECT ballot_id FROM {ks}.ballots WHERE poll_id = ? AND bucket = ?")
        for stmt in (self._save_poll, self._poll, self._latest, self._ids):
            stmt.is_idempotent = True

    @guarded
    def save_ballot_box(self, poll: BallotBox) -> None:
        rules = rules_adapter.dump_json(poll.rules).decode() if poll.rules else None
        self.s.execute(self._save_poll, (poll.poll_id, rules, poll.rules_hash, poll.status))

    @guarded
    def ballot_box(self, poll_id: str) -> BallotBox | None:
        r = self.s.execute(self._poll, (poll_id,)).one()
        if r is None:
            return None
        rules = rules_adapter.validate_json(r.rules) if r.rules else None
        return BallotBox(r.poll_id, rules, r.rules_hash, r.status)

    @guarded
    def latest_sequence(self, poll_id: str, voter_key: str) -> int:
        r = self.s.execute(self._latest, (poll_id, bucket(voter_key), voter_key)).one()
        return int(r.sequence) if r else 0

    @guarded
    def insert_ballot(self, b: Ballot) -> bool:
        result = self.s.execute(self._insert, (
            b.poll_id, bucket(b.voter_key), b.voter_key, b.sequence, b.ballot_id, b.tracker,
            json.dumps(b.choice), b.channel, b.recorded_at))
        return bool(result.was_applied)

    def ballot_ids(self, poll_id: str) -> Iterator[str]:
        return (r.ballot_id for r in scan_buckets(self.s, self._ids, poll_id, BALLOT_BUCKETS))

    @guarded
    def ping(self) -> None:
        ping(self.s)
