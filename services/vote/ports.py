"""What the vote core needs from storage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
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

    def add_ballots(self, ballots: list[Ballot], again: Sequence[Ballot] = ()) -> None:
        """Store the ballots; storing one again writes the same row (idempotent).
        ``again``: ballots (and marks) found stored, whose index rows (``ballot_ids``,
        ``paper_marks``) are written again in the same round: a write that failed
        halfway may have stored a ballot's row and not its index, and the seal counts
        from the index. Ignored where a batch's writes are one transaction."""
        ...

    def closed_shards(self, poll_id: str) -> set[int]:
        """The shards that have passed the poll's close marker."""
        ...

    def voters_and_box(self, poll_id: str, voter_keys: Iterable[str]
                       ) -> tuple[dict[str, list[Ballot]], set[int], datetime | None]:
        """``ballots_of``, ``closed_shards`` and the box's close time together: what a
        batch reads before it decides (in Cassandra, all in flight at once: one wait,
        not three). The close time is read every batch, not kept: an extension may set
        one on a poll that had none."""
        ...

    def close_shards(self, poll_id: str, shards: Iterable[int]) -> None: ...

    def save_seal(self, seal: Seal) -> Seal:
        """Keep the first seal of a poll; returns the one kept."""
        ...

    def ballot_ids(self, poll_id: str) -> Iterator[str]:
        """The ids of every stored ballot of the poll (revotes included)."""
        ...

    def ballot_voters(self, poll_id: str) -> Iterator[str]:
        """The voter key of every stored ballot of the poll, once a ballot (revotes
        included): how many ballots each counting shard carried."""
        ...

    def stored_ballots(self, poll_id: str, chunk: int,
                       voters: Callable[[str], bool] | None = None
                       ) -> Iterator[list[Ballot]]:
        """Every stored ballot of the poll (revotes included), in lists of about
        ``chunk`` (voters, or rows): what the seal counts, and what ``ballots.missing``
        sends again; only those of the voters ``voters`` accepts, if given."""
        ...

    def save_result_signed(self, poll_id: str, signed_at: datetime) -> None:
        """The tally signed the poll's result (result.published; the same time on every
        delivery): its ballots' retention starts."""
        ...
    def ballots_to_purge(self, signed_before: datetime) -> list[str]:
        """The polls whose result was signed before ``signed_before`` and whose ballots
        are not deleted yet."""
        ...
    def purge_ballots(self, poll_id: str, now: datetime) -> None:
        """Delete the poll's ballots and paper marks (voter keys, choices, agents, ids)
        and note when; the box and its seal stay. A stop midway: called again, it
        deletes the rest."""
        ...
    def ping(self) -> None: ...
