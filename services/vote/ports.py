"""What the vote core needs from storage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from urne.services.vote.domain import Ballot, BallotBox, Seal


class VoteStore(Protocol):
    def save_ballot_box(self, box: BallotBox) -> None:
        """Its rules and status (not its close time: ``extend_close``)."""
        ...
    def extend_close(self, poll_id: str, closes_at: datetime) -> None:
        """Keep ``closes_at`` as the box's close time unless a later one is kept."""
        ...
    def ballot_box(self, poll_id: str) -> BallotBox | None: ...

    def ballots_of(self, poll_id: str, voter_keys: Iterable[str]) -> dict[str, list[Ballot]]:
        """Every stored ballot of each of these voters (voters with none are absent)."""
        ...

    def add_ballots(self, ballots: list[Ballot]) -> None:
        """Store the ballots; storing one again writes the same row (idempotent)."""
        ...

    def closed_shards(self, poll_id: str) -> set[int]:
        """The shards that have passed the poll's close marker."""
        ...

    def close_shards(self, poll_id: str, shards: Iterable[int]) -> None: ...

    def save_seal(self, seal: Seal) -> Seal:
        """Keep the first seal of a poll; returns the one kept."""
        ...

    def ballot_ids(self, poll_id: str) -> Iterator[str]:
        """The ids of every stored ballot of the poll (revotes included)."""
        ...

    def stored_ballots(self, poll_id: str, chunk: int) -> Iterator[list[Ballot]]:
        """Every stored ballot of the poll (revotes included), in lists of about
        ``chunk`` (voters, or rows): what the seal counts, and what ``ballots.missing``
        sends again."""
        ...

    def ping(self) -> None: ...
