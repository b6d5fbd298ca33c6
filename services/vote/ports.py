"""What the vote core needs from storage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from urne.services.vote.domain import Ballot, BallotBox


class VoteStore(Protocol):
    def save_ballot_box(self, poll: BallotBox) -> None: ...
    def ballot_box(self, poll_id: str) -> BallotBox | None: ...
    def latest_sequence(self, poll_id: str, voter_key: str) -> int:
        """Highest stored sequence for this voter in this poll, 0 if none."""
        ...
    def insert_ballot(self, ballot: Ballot) -> bool:
        """Store the ballot unless (poll, voter, sequence) exists; False on that conflict."""
        ...
    def ballot_ids(self, poll_id: str) -> Iterator[str]: ...
    def ping(self) -> None: ...
