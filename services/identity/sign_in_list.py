"""A poll's sign-in list (émargement): who has voted, never what, never when. No I/O here.

The vote service tells identity, after each batch of ballots it stored, the voter keys
that have a ballot (``sign_in_list.marked.v1``): the pseudonyms identity itself derived
for each person and poll, with the channel and the district of the voting token. Identity
keeps one mark per voter and channel, without a time (in Cassandra even the write
timestamp is fixed: ``MARK_TIMESTAMP``), so the list cannot be matched with sign-ins.
From it an organiser sees the turnout by district and channel, and an agent at a desk
sees whether the person in front of them has voted already (identity derives that
person's voter key again). Paper ballots are not in it: their voter keys are the
papers', not people's; the people an agent marked as voting on paper are (channel
``paper``, from the vote service too: the mark goes through it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from urne.services.identity.buckets import with_earlier

# Cassandra keeps a write time with every cell; the marks are all written with this one
# (the epoch), so the table says nothing of when anyone voted. Equal marks written twice
# stay one, whatever the order.
MARK_TIMESTAMP = 0
# A poll's list is spread over this many Cassandra partitions by voter key: a city's
# million voters make 128 partitions of ~7,800 small rows (64 before 2026-12-02: see
# ``buckets.with_earlier``). Part of the storage layout.
BUCKETS = 128


@dataclass(frozen=True)
class Mark:
    poll_id: str
    voter_key: str
    channel: str
    district: str | None


@dataclass(frozen=True)
class Cell:
    district: str | None
    voters: int
    channels: dict[str, int]


@dataclass(frozen=True)
class Count:
    voters: int
    channels: dict[str, int]
    districts: list[Cell]  # by district name, None last


def count(marks: Iterable[Mark]) -> Count:
    """The turnout of a poll's marks: people (voter keys), by district and by channel. A
    voter with ballots in two channels is one voter, counted in each channel; with two
    districts (a declared district changed between two ballots), in the latest mark
    read, which is one of them."""
    district: dict[str, str | None] = {}
    channels: dict[str, set[str]] = {}
    for mark in marks:
        district[mark.voter_key] = mark.district
        channels.setdefault(mark.voter_key, set()).add(mark.channel)
    cells: dict[str | None, tuple[int, dict[str, int]]] = {}
    total: dict[str, int] = {}
    for voter, where in district.items():
        voters, by_channel = cells.get(where, (0, {}))
        for channel in channels[voter]:
            by_channel[channel] = by_channel.get(channel, 0) + 1
            total[channel] = total.get(channel, 0) + 1
        cells[where] = (voters + 1, by_channel)
    ordered = sorted(cells.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return Count(len(district), dict(sorted(total.items())),
                 [Cell(where, voters, dict(sorted(by_channel.items())))
                  for where, (voters, by_channel) in ordered])


def bucket(voter_key: str) -> int:
    """The first 32 bits of the (hex) voter key, modulo ``BUCKETS``."""
    return int(voter_key[:8], 16) % BUCKETS


def buckets(voter_key: str) -> list[int]:
    """Where a voter's marks may be: its partition, and the earlier layout's if other."""
    return with_earlier(bucket(voter_key))
