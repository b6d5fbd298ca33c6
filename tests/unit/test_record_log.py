"""The record as a log (urne.record.v2): whatever order and intervals ballots come in,
the entries count each voter's last ballot only, chain, and pass the checks an auditor
runs; each kind of rewriting is named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urne.record import log
from urne.record.canonical import canonical_json

pytestmark = pytest.mark.unit

RULES_HASH = "ab" * 32


def chain(voter: int, ballots: int, channels: list[str] | None = None) -> list[log.Ballot]:
    """A voter's ballots as the vote service admits them: each revote replaces the one
    before."""
    out, previous = [], None
    for sequence in range(1, ballots + 1):
        tracker = f"T{voter:03d}-{(voter * 7919 + sequence * 104729) % 9973:04d}-{sequence}"
        channel = channels[sequence - 1] if channels else "online"
        out.append(log.Ballot(tracker, {"option": f"o{(voter + sequence) % 3}"}, channel,
                              previous))
        previous = tracker
    return out


def grow(batches: list[list[log.Ballot]]) -> tuple[list[dict], list[int]]:
    """Append each batch as an interval, as the tally does, skipping what is logged."""
    entries: list[dict] = []
    intervals: list[int] = []
    tip = log.Tip.empty(RULES_HASH)
    for batch in batches:
        logged = {e["tracker"] for e in entries}
        added = log.interval(tip, [b for b in batch if b.tracker not in logged])
        assert added.leaves == [log.leaf(e) for e in added.entries]
        assert added.lines == [canonical_json(e) for e in added.entries]
        entries += added.entries
        tip = added.tip
        if added.entries:
            intervals.append(tip.size)
    return entries, intervals


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_last_ballot_of_each_voter_counts_whatever_the_order(data: st.DataObject) -> None:
    voters = data.draw(st.integers(min_value=1, max_value=8))
    chains = [chain(v, data.draw(st.integers(min_value=1, max_value=4)),
                    data.draw(st.lists(st.sampled_from(["online", "desk", "paper"]),
                                       min_size=4, max_size=4)))
              for v in range(voters)]
    ballots = [b for c in chains for b in c]
    # Ballots reach the tally in any order (a batch sent again after a later one), some
    # twice, in intervals cut anywhere.
    arrivals = data.draw(st.permutations(ballots))
    again = data.draw(st.lists(st.sampled_from(ballots), max_size=4))
    stream = [*arrivals, *again]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    entries, intervals = grow(batches)

    assert len(entries) == len(ballots)  # every accepted ballot, once
    assert log.check(entries, RULES_HASH, intervals) is None
    assert sorted(e["tracker"] for e in log.counted(entries)) == \
        sorted(c[-1].tracker for c in chains)
    by_channel = log.channels(entries)
    assert sum(c["entries"] for c in by_channel.values()) == len(ballots)
    assert sum(c["counted"] for c in by_channel.values()) == voters


def test_an_interval_is_in_tracker_order_and_chains_from_the_rules() -> None:
    entries, _ = grow([[*chain(3, 1), *chain(1, 1), *chain(2, 1)]])
    assert [e["tracker"] for e in entries] == sorted(e["tracker"] for e in entries)
    assert entries[0]["parent"] == RULES_HASH
    assert entries[1]["parent"] == log.leaf(entries[0]).hex()
    assert [e["height"] for e in entries] == [0, 1, 2]


def test_a_revote_names_the_ballot_it_replaces_even_before_it_is_logged() -> None:
    first, second, third = chain(1, 3)
    entries, intervals = grow([[second], [third], [first]])
    assert [e.get("supersedes") for e in entries] == [first.tracker, second.tracker, None]
    # Until the first ballot comes, a name does not resolve: the log is not whole yet.
    assert "not another entry" in (log.check(entries[:2], RULES_HASH, intervals[:2]) or "")
    assert log.check(entries, RULES_HASH, intervals) is None
    assert log.counted(entries) == [entries[1]]


def tampered(entries: list[dict], how: str) -> list[dict]:
    e = [dict(x) for x in entries]
    if how == "altered":
        e[2]["choice"] = {"option": "other"}
    elif how == "deleted":
        del e[2]
    elif how == "inserted":
        e.insert(2, {**e[2], "tracker": e[2]["tracker"] + "x"})
    elif how == "swapped":
        e[1], e[2] = e[2], e[1]
    elif how == "duplicated":
        e.append(dict(e[2]))
    return e


@pytest.mark.parametrize(("how", "message"), [
    ("altered", "entry 3 does not chain"),
    ("deleted", "entry 2 says it is at height 3"),
    ("inserted", "entry 3 says it is at height 2"),
    ("swapped", "entry 1 says it is at height 2"),
    ("duplicated", "entry 5 says it is at height 2"),
])
def test_rewriting_the_log_is_named(how: str, message: str) -> None:
    entries, _ = grow([[b for v in range(5) for b in chain(v, 1)]])
    rewritten = tampered(entries, how)
    assert message in (log.check(rewritten, RULES_HASH, [len(rewritten)]) or "")


def test_a_log_for_other_rules_or_out_of_order_is_refused() -> None:
    entries, intervals = grow([[b for v in range(4) for b in chain(v, 1)]])
    assert "entry 0 does not chain" in (log.check(entries, "cd" * 32, intervals) or "")
    # Rebuilt whole, chain and heights right, in arrival order instead of tracker order.
    rows = sorted(entries, key=lambda e: e["tracker"], reverse=True)
    tip, rebuilt = log.Tip.empty(RULES_HASH), []
    for row in rows:
        entry = {**row, "height": tip.size, "parent": tip.parent}
        rebuilt.append(entry)
        tip = log.Tip(tip.size + 1, log.leaf(entry).hex())
    assert "not in tracker order" in (log.check(rebuilt, RULES_HASH, [4]) or "")
    assert log.check(rebuilt, RULES_HASH, [1, 2, 3, 4]) is None  # one entry per interval
    assert "its last tree head 2" in (log.check(entries, RULES_HASH, [2]) or "")
    assert "its last tree head 4" in (log.check(entries[:3], RULES_HASH, [4]) or "")
    assert "do not grow" in (log.check(entries, RULES_HASH, [3, 2, 4]) or "")


def test_a_ballot_is_superseded_once_by_another_entry() -> None:
    first, second = chain(1, 2)
    entries, intervals = grow([[first, second]])
    twice = [*entries, {"height": 2, "parent": log.leaf(entries[1]).hex(), "tracker": "TZ",
                        "choice": {}, "channel": "online", "supersedes": first.tracker}]
    assert "superseded by two entries" in (log.check(twice, RULES_HASH, [*intervals, 3])
                                           or "")
    itself = [{**entries[0], "supersedes": entries[0]["tracker"]}]
    assert "not another entry" in (log.check(itself, RULES_HASH, [1]) or "")
    unknown = [{**entries[0], "superseded_by": "TX"}]
    assert "exactly the members" in (log.check(unknown, RULES_HASH, [1]) or "")
