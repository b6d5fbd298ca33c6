"""Domain events, grouped by producer. Past tense; no personal data in any of them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from urne.contracts.envelope import Event, message
from urne.contracts.fields import CrossChannel, Electorate, ResultsVisibility
from urne.counting.rules import PollRules


@message("poll.opened.v1")
class PollOpened(Event):
    PRODUCER = "proposal"
    poll_id: str
    consultation_id: str
    rules: PollRules
    rules_hash: str
    opened_at: datetime
    # Frozen with the rules; absent (an event from before the setting): after_close.
    results_visibility: ResultsVisibility = "after_close"
    # Who may get a voting token, frozen with the rules; absent (an event from before
    # the setting): open.
    electorate: Electorate = "open"
    # Whether a ballot cast in person (at a desk) is final, frozen with the rules; absent
    # (an event from before the setting): latest_wins.
    cross_channel: CrossChannel = "latest_wins"
    # When it is due to close (None: by hand only): the vote service refuses ballots
    # received after it, even those still on their way when the close marker comes.
    # Only ``poll.close_extended.v1`` moves it, and only later.
    closes_at: datetime | None = None


@message("poll.result_released.v1")
class PollResultReleased(Event):
    """An organiser published the embargoed result of a poll: the tally may show it
    (the signed result, the record and the proofs) once it has signed it. Sent again,
    with the same ``released_at`` (the poll's publication), when the organiser publishes
    again, which repairs a release lost on the way; the tally's copy does not change."""

    PRODUCER = "proposal"
    poll_id: str
    released_at: datetime


@message("poll.closed.v1")
class PollClosed(Event):
    PRODUCER = "proposal"
    poll_id: str
    closed_at: datetime


@message("poll.close_extended.v1")
class PollCloseExtended(Event):
    """An organiser moved an open poll's close later, before it came (an amendment,
    public, listed with the poll). ``closes_at`` only ever grows, so a reader keeps the
    latest of the ones it received, whatever their order."""

    PRODUCER = "proposal"
    poll_id: str
    closes_at: datetime
    previous_closes_at: datetime | None
    reason: str
    extended_at: datetime


class RecordedBallot(BaseModel):
    """One ballot as the vote service stored it.

    ``voter_key`` is the poll-scoped pseudonym from the voting token: it lets the
    tally keep one ballot per voter (the highest ``sequence``); besides the vote and
    tally stores it goes only to identity's sign-in list (``SignInListMarked``, without
    the ballot), and the public record shows only ``tracker``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    poll_id: str
    ballot_id: str
    tracker: str
    voter_key: str
    sequence: int
    choice: dict[str, Any]
    channel: str
    recorded_at: datetime
    # The agent who cast it at a desk or entered it from paper (``agent_key``): optional,
    # absent from older producers and online ballots.
    agent: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None


@message("ballots.recorded.v1")
class BallotsRecorded(Event):
    """Ballots stored durably by the vote service (a ballot already stored may appear
    again: consumers are idempotent).

    One message per intake batch and counting shard (``shard``: every ballot in it is
    of a voter of that shard; a vote worker may merge several batches' into one), which
    in the distributed profile travels on that shard's counting stream. Without
    ``shard`` (an older producer), the tally finds each ballot's shard from its voter
    key."""

    PRODUCER = "vote"
    ballots: list[RecordedBallot]
    shard: int | None = Field(default=None, ge=0)
    # When the vote service stored these ballots (or sent them again). The ballots' own
    # times are kept to the minute only, so that no store can match a ballot with a
    # sign-in; the tally measures its counting lag from this one, which it does not keep.
    stored_at: datetime | None = None


class SignInListEntry(BaseModel):
    """A voter who has a ballot in a poll, for identity's sign-in list (émargement): the
    voter key (the pseudonym identity derived for the person and poll), the channel and
    the district of the voting token. Never what, never when."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    poll_id: str
    voter_key: str
    channel: str
    district: str | None = None


@message("sign_in_list.marked.v1")
class SignInListMarked(Event):
    """The voters of an intake batch (or of several, merged), for the sign-in list: sent
    after the ballots are stored (a voter already marked may appear again: identity is
    idempotent). Paper ballots are not in it: their voter keys are the papers', not
    people's."""

    PRODUCER = "vote"
    voters: list[SignInListEntry]


@message("ballot_box.closed.v1")
class BallotBoxClosed(Event):
    """The close marker: the vote service stops taking ballots for a poll.

    It travels through every ballot shard, in order with the ballots: a ballot ahead
    of it in its shard is recorded, one behind it is refused (``poll_closed``). Once
    every shard has passed it, the vote service seals the box.
    """

    PRODUCER = "vote"
    poll_id: str
    closed_at: datetime


@message("ballot_box.sealed.v1")
class BallotBoxSealed(Event):
    """Retired: the seal with an optional digest, which a forger could leave out (the
    tally then checked the count alone). Still read, never sent or taken: v2."""

    PRODUCER = "vote"
    poll_id: str
    ballots_recorded: int
    sealed_at: datetime
    ballots_digest: str | None = None


@message("ballot_box.sealed.v2")
class BallotBoxSealedV2(Event):
    """The vote service stopped accepting ballots for a poll; ``ballots_recorded``
    counts every stored ballot (revotes included), so the tally knows when it has
    received them all, and ``ballots_digest`` (required: a new version, since v1 had
    it optional) proves they are the same ones."""

    PRODUCER = "vote"
    poll_id: str
    ballots_recorded: int
    # urne.record.canonical.ballot_set_digest of every stored ballot id.
    ballots_digest: str
    sealed_at: datetime


# Each counting shard's voters split again by other bits of their key: how many ballots
# the tally holds of each cell tells the vote service which few to send again when some
# were lost (``BallotsMissing.received_by_cell``).
VOTER_CELLS = 16


def voter_cell(voter_key: str) -> int:
    """The cell of a voter within its counting shard: bits 32-63 of the (hex) voter key,
    which the counting shard (bits 0-31, ``counting_shard``) does not use, modulo
    ``VOTER_CELLS``."""
    return int(voter_key[8:16], 16) % VOTER_CELLS


@message("ballots.missing.v1")
class BallotsMissing(Event):
    """The tally holds fewer of a sealed poll's ballots than the seal counts, a while
    after the seal: an event on the way was lost. The vote service answers by sending
    every stored ballot of the poll again (``ballots.recorded.v1``); the tally keeps one
    copy of each, so the repeats change nothing and the lost ones arrive.

    ``received_by_shard`` (optional, added within v1): what the tally holds of each
    counting shard, one count a shard. The vote service then sends again only the
    ballots of the shards it stored more of, and all of them if it counts its shards
    otherwise. ``received_by_cell`` (optional, added within v1): the same, finer, per
    counting shard and then per ``voter_cell``: the vote service sends again only the
    ballots of the cells it stored more of."""

    PRODUCER = "tally"
    poll_id: str
    received: int
    sealed: int
    received_by_shard: list[int] | None = None
    received_by_cell: list[list[int]] | None = None


@message("counting.rotated.v1")
class CountingRotated(Event):
    """The end of a counting stream's generation (``urne/messaging/counting_rotation.py``):
    a tally worker rotating the counting streams puts one on each shard's stream once the
    next generation's stream is bound beside it. A worker reading it in generation
    ``generation - 1`` moves its checkpoint to the start of ``generation`` and reads on
    there; every ballot after it in the old stream is in the new one as well. Read in
    ``generation`` itself (the same message reached both), it is passed over."""

    PRODUCER = "tally"
    shard: int = Field(ge=0)
    generation: int = Field(ge=1)


@message("electorate.counted.v1")
class ElectorateCounted(Event):
    """How many people a census poll's electorate held at its close: the eligible
    entries of its consultation's census, counted by identity once, when the poll
    closed, and the same number on every sending. The tally signs a census poll's result
    only with it (``reconciliation.eligible``). Polls open to all have no such number."""

    PRODUCER = "identity"
    poll_id: str
    eligible: int = Field(ge=0)
    counted_at: datetime


@message("electorate.missing.v1")
class ElectorateMissing(Event):
    """A closed and sealed census poll whose electorate count has not reached the tally
    a while after: the event was lost. Identity answers with ``electorate.counted.v1``
    again (counting it first if its own close was cut short)."""

    PRODUCER = "tally"
    poll_id: str


@message("result.published.v1")
class ResultPublished(Event):
    PRODUCER = "tally"
    poll_id: str
    record_root: str
    ballots_counted: int
    published_at: datetime
